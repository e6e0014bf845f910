"""`run`: create and start in one process, then wait for the container.

In the foreground rootlet stays the init's parent (a subreaper, see
runtime.create), forwards the signals it receives, exits with the
container's status (128+signal when it was killed) and deletes it unless
--keep. A terminal without --console-socket is relayed through a pty
(runtime.console).
"""

from __future__ import annotations

import _signal
import os

from runtime import container, create
from runtime.create import CreateOptions
from runtime.errors import RootletError
from runtime.spec.model import Config
from runtime.state import ContainerDir

_FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT")


def run(root: str, container_id: str, config: Config, options: CreateOptions, *, detach: bool,
        keep: bool) -> int:
    relay = None
    if config.process is not None and config.process.terminal and not options.console_socket and not detach:
        from runtime import console

        relay = console.Relay()
        options.console_socket = relay.socket_path
    try:
        pid = create.create(root, container_id, config, options, then=container.release)
    except BaseException:
        if relay is not None:
            relay.close()
        raise
    if detach:
        return 0
    code = wait_in_foreground(pid, relay)
    if not keep:
        _delete_stopped(root, container_id)
    return code


def wait_in_foreground(pid: int, relay) -> int:
    """Wait for `pid` (relaying its terminal, if `relay`), forwarding the
    signals we get; returns its exit code. This may take days: the garbage
    collector, off for the short commands (bin/rootlet), is back on."""
    import gc

    gc.enable()
    forward_signals(pid)
    return relay.copy_until_exit(pid) if relay is not None else wait_for(pid)


def forward_signals(pid: int) -> None:
    def forward(number, _frame):
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass

    for name in _FORWARDED:
        _signal.signal(getattr(_signal, name), forward)


def wait_for(pid: int) -> int:
    """Reap children until the init exits; others are orphans we adopted."""
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if child == pid:
            return exit_code(status)


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _delete_stopped(root: str, container_id: str) -> None:
    try:
        directory = ContainerDir.open(root, container_id)
    except RootletError:
        return  # already gone
    with directory:
        container.destroy(directory, directory.load())
