"""Run OCI hooks (config.md "POSIX-platform Hooks").

Each hook gets the container's state JSON on stdin, runs with exactly its
`args` (args[0] is argv[0]) and `env`, and is killed after `timeout` seconds.
Its output is kept and shown only when it fails, as runc does, so that a
chatty hook cannot garble the stdio that `create` shares with the container.
"""

from __future__ import annotations

import os

from runtime import _linux, jsonio
from runtime.errors import RootletError
from runtime.spec.model import Hook


def run_all(phase: str, hooks: list[Hook], state: dict, warn=None) -> None:
    """Run the hooks in order. The first failure stops the rest and is
    raised, unless `warn` is given: then each failure is passed to it and the
    remaining hooks still run (poststart, poststop)."""
    payload = jsonio.dumps(state).encode()
    for index, hook in enumerate(hooks):
        try:
            run_one(hook, payload, f"{phase} hook #{index} ({hook.path})")
        except RootletError as err:
            if warn is None:
                raise
            warn(str(err))


def run_one(hook: Hook, payload: bytes, what: str) -> None:
    output = os.memfd_create("hook-output", os.MFD_CLOEXEC)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _spawn(hook, read_end, output)
        os.close(read_end)
        read_end = -1
        try:
            os.write(write_end, payload)
        except BrokenPipeError:
            pass  # a hook need not read its stdin
        os.close(write_end)
        write_end = -1
        status = _wait(pid, hook.timeout, what)
        if status != 0:
            os.lseek(output, 0, os.SEEK_SET)
            text = os.read(output, 4096).decode(errors="replace").strip().replace("\n", " ")
            detail = f": {text}" if text else ""
            raise RootletError(f"{what} exited with status {status}{detail}")
    finally:
        for fd in (read_end, write_end, output):
            if fd >= 0:
                os.close(fd)


def _spawn(hook: Hook, stdin_fd: int, output_fd: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_fd, 0)
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            os.execve(hook.path, hook.args or [hook.path], dict(_split_env(hook.env)))
        except BaseException as err:
            os.write(2, f"exec {hook.path}: {err}\n".encode())
        finally:
            os._exit(127)
    return pid


def _split_env(env: list[str]):
    for entry in env:
        name, _, value = entry.partition("=")
        yield name, value


def _wait(pid: int, timeout: int | None, what: str) -> int:
    if timeout is not None:
        pidfd = os.pidfd_open(pid)
        try:
            if not _linux.wait_readable([pidfd], timeout * 1000):
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise RootletError(f"{what} timed out after {timeout}s")
        finally:
            os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def to_json(hook: Hook) -> dict:
    """A hook as create records it in the state, for start and delete."""
    return {"path": hook.path, "args": hook.args, "env": hook.env, "timeout": hook.timeout}


def from_state(state: dict, phase: str) -> list[Hook]:
    return [Hook(h["path"], h["args"], h["env"], h["timeout"]) for h in state.get("hooks", {}).get(phase, [])]


def state_for_hooks(container_id: str, status: str, pid: int, bundle: str, annotations: dict,
                    oci_version: str) -> dict:
    """The state a hook reads on stdin (runtime.md "State")."""
    state = {"ociVersion": oci_version, "id": container_id, "status": status, "bundle": bundle,
             "annotations": annotations}
    if pid:
        state["pid"] = pid
    return state
