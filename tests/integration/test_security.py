"""Regression tests named after classes of container-escape bugs."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.runtime import wait_for

from .scripts import WAIT_FOR_STOP


def _fds(pid):
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


# -- leaked file descriptors (CVE-2016-9962 / CVE-2024-21626 class) ----------------

def test_init_does_not_inherit_runtime_fds(rt, cid, bundle, testdir):
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    secret = open(testdir / "host-secret", "w")  # noqa: SIM115
    try:
        fd = secret.fileno()
        os.set_inheritable(fd, True)
        rt.create(cid, bundle, pass_fds=(fd,))
        rt.ok("start", cid, pass_fds=(fd,))
    finally:
        secret.close()
    wait_for(lambda: (out / "started").exists(), what="container to start")
    pid = rt.state(cid)["pid"]
    assert _fds(pid) == [0, 1, 2], {
        fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in _fds(pid)}


def test_run_foreground_does_not_leak_fds(rt, cid, bundle, testdir):
    secret = open(testdir / "host-secret", "w")  # noqa: SIM115
    try:
        fd = secret.fileno()
        bundle.args("ls", "/proc/self/fd")
        r = rt.run(cid, bundle, pass_fds=(fd,))
    finally:
        secret.close()
    assert r.rc == 0, str(r)
    # ls itself holds one extra descriptor: the directory it is reading
    assert len(r.out.split()) == 4, r.out


def test_preserve_fds_passes_fd_3_through(rt, cid, bundle, testdir):
    target = testdir / "via-fd3"
    target.touch()
    other = open(testdir / "not-preserved", "w")  # noqa: SIM115
    out = bundle.shared_dir()
    bundle.sh('echo via-fd3 >&3; touch /out/started; while [ ! -e /out/stop ]; do sleep 0.02; done')
    try:
        os.set_inheritable(other.fileno(), True)
        rt.run_detached(cid, bundle, "--preserve-fds", "1", pass_fds=(other.fileno(),),
                        wrap=["sh", "-c", 'exec 3>>"$0"; exec "$@"', str(target)])
    finally:
        other.close()
    wait_for(lambda: (out / "started").exists(), what="container to start")
    assert target.read_text() == "via-fd3\n"
    pid = rt.state(cid)["pid"]
    assert _fds(pid) == [0, 1, 2, 3]
    assert os.readlink(f"/proc/{pid}/fd/3") == str(target)


def test_cwd_through_leaked_fd_cannot_escape(rt, bundle, make_bundle):
    # CVE-2024-21626: process.cwd = /proc/self/fd/N where N is a runtime fd
    # left open into the host. Each attempt must fail or stay inside.
    marker = f"host-only-{bundle.token}"
    (bundle.path.parent / marker).touch()
    for n in range(3, 9):
        b = make_bundle()
        b.process["cwd"] = f"/proc/self/fd/{n}"
        b.sh(f"ls -a . .. ../.. ../../.. 2>/dev/null | grep -c {marker}; pwd")
        r = rt.run(f"ct-{b.token}", b)
        if r.rc == 0:
            assert r.out.split()[0] == "0", f"fd {n} escaped: {r.out}"
        rt("delete", "--force", f"ct-{b.token}")


# -- overwriting the runtime binary (CVE-2019-5736 class) ----------------------------

def test_container_sees_user_program_as_pid1(rt, cid, bundle):
    digest = hashlib.sha256((bundle.rootfs / "bin" / "busybox").read_bytes()).hexdigest()
    bundle.config["root"]["readonly"] = False
    bundle.sh(
        "grep '^Name:' /proc/1/status; "
        "{ echo x >> /proc/1/exe; } 2>/dev/null && echo WRITABLE || echo write-refused; "
        "{ echo x >> /proc/self/exe; } 2>/dev/null && echo WRITABLE || echo write-refused"
    )
    out = rt.run_ok(cid, bundle).splitlines()
    assert out[0].split() == ["Name:", "sh"]
    assert out[1:] == ["write-refused", "write-refused"]
    assert hashlib.sha256((bundle.rootfs / "bin" / "busybox").read_bytes()).hexdigest() == digest


@pytest.mark.runc_only(
    "runc's init is its own binary, re-executed from a sealed copy; rootlet's init is "
    "the host's Python interpreter, forked, not executed, and kept non-dumpable so that "
    "/proc/<init>/exe is unreachable from the container: the next test checks the effect"
)
def test_created_init_exe_is_read_only_or_sealed(rt, cid, bundle):
    """While the container's init is still the runtime, the binary behind
    /proc/<init>/exe sits on a read-only mount or is a write-sealed memfd."""
    bundle.sh("exit 0")
    rt.create(cid, bundle)
    pid = rt.state(cid)["pid"]
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
    try:
        read_only = bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        except OSError:
            seals = 0
    finally:
        os.close(fd)
    assert read_only or seals & fcntl.F_SEAL_WRITE, os.readlink(f"/proc/{pid}/exe")


def test_runtime_exe_reached_through_init_is_not_writable(rt, cid, bundle, runtime_binary):
    """What the container can grab while its init is still the runtime
    (/proc/<init>/exe, via an O_PATH fd kept across `start`) must not be
    reopenable for writing once the runtime is gone."""
    before = hashlib.sha256(open(runtime_binary, "rb").read()).hexdigest()
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    rt.create(cid, bundle)
    pid = rt.state(cid)["pid"]
    held = os.open(f"/proc/{pid}/exe", os.O_PATH)
    try:
        rt.ok("start", cid)
        wait_for(lambda: (out / "started").exists(), what="container to start")
        try:
            fd = os.open(f"/proc/self/fd/{held}", os.O_WRONLY | os.O_APPEND)
        except OSError:
            pass
        else:
            os.close(fd)
            pytest.fail("runtime binary reachable from the container is writable")
    finally:
        os.close(held)
    assert hashlib.sha256(open(runtime_binary, "rb").read()).hexdigest() == before


# -- mount destinations through symlinks (CVE-2021-30465 class) ------------------------

@pytest.fixture
def host_tmp():
    """A host directory outside the bundle tree (under /tmp, not /dev/shm, so
    that its path does not resolve into the container's /dev tmpfs)."""
    d = tempfile.mkdtemp(prefix="rootlet-host-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_symlinked_mount_destination_stays_inside_rootfs(rt, cid, bundle, testdir, host_tmp,
                                                        style):
    hostdir = host_tmp / f"hostdir-{bundle.token}"
    hostdir.mkdir()
    (hostdir / "host-file").write_text("host\n")
    src = testdir / "payload"
    src.mkdir()
    (src / "payload-file").write_text("payload\n")
    os.chmod(src, 0o777)
    target = str(hostdir) if style == "absolute" else "../" * 12 + str(hostdir).lstrip("/")
    os.symlink(target, bundle.rootfs / "etc" / "evil")
    bundle.bind(src, "/etc/evil", "rw")
    bundle.sh("cat /etc/evil/payload-file; echo written > /etc/evil/from-container; "
              "grep -c hostdir- /proc/self/mountinfo")
    out = rt.run_ok(cid, bundle).split()
    assert out[0] == "payload"
    assert out[-1] == "1"  # the mount landed somewhere inside the rootfs
    # written into the mounted source, nothing reached the host path
    assert (src / "from-container").read_text() == "written\n"
    assert sorted(os.listdir(hostdir)) == ["host-file"]
    inside = bundle.rootfs / str(hostdir).lstrip("/")
    assert inside.is_dir(), "mount point should have been created inside the rootfs"
    with open("/proc/self/mountinfo") as f:
        assert str(hostdir) not in f.read()


def test_symlinked_tmpfs_destination_stays_inside_rootfs(rt, cid, bundle, host_tmp):
    hostdir = host_tmp / f"hostdir-{bundle.token}"
    hostdir.mkdir()
    os.symlink(str(hostdir), bundle.rootfs / "etc" / "evil")
    bundle.add_mount("/etc/evil", "tmpfs", "tmpfs", ["size=1m"])
    bundle.sh("echo x > /etc/evil/in-tmpfs && awk '$5 ~ /hostdir-/ {print $9}' "
              "/proc/self/mountinfo")
    assert rt.run_ok(cid, bundle).split() == ["tmpfs"]
    assert os.listdir(hostdir) == []


def test_symlinked_mount_destination_never_touches_host_path(rt, cid, bundle, host_tmp):
    # The symlink points at a host path that does not exist: creating the
    # mount point must happen inside the rootfs, never on the host.
    missing = host_tmp / f"missing-{bundle.token}"
    os.symlink(str(missing), bundle.rootfs / "etc" / "evil")
    bundle.add_mount("/etc/evil", "tmpfs", "tmpfs", ["size=1m"])
    bundle.sh("exit 0")
    rt.run(cid, bundle)
    assert not missing.exists()


# -- masked paths cannot be unmasked -------------------------------------------------

def test_masked_path_cannot_be_unmounted_without_cap_sys_admin(rt, cid, bundle):
    bundle.sh("umount /proc/timer_list 2>/dev/null; umount -l /sys/firmware 2>/dev/null; "
              "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l")
    assert rt.run_ok(cid, bundle).split() == ["0", "0"]


def test_readonly_path_cannot_be_remounted_rw(rt, cid, bundle):
    bundle.sh("mount -o remount,rw /proc/sys 2>/dev/null; "
              "{ echo 1 > /proc/sys/kernel/shm_rmid_forced; } 2>&1; echo rc=$?")
    assert "rc=1" in rt.run_ok(cid, bundle)


# -- stdio that is the host's /dev/null (CVE-2016-3697-ish chown of host files) ------

@pytest.mark.parametrize("stdout", ["devnull", "file"])
def test_host_dev_null_stdio_is_not_chowned(rt, cid, bundle, testdir, stdout):
    before = os.stat("/dev/null")
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.sh("exit 0")
    bundle.write()
    if stdout == "devnull":
        r = rt("run", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL)
    else:
        r = rt("run", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    assert r.rc == 0, str(r)
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid, before.st_gid, before.st_mode)


def test_proc_destination_that_is_a_symlink_is_refused(rt, cid, bundle):
    """CVE-2019-19921 / CVE-2023-27561 class: an image whose /proc is a
    symlink must not get procfs (and the masks over it) somewhere else."""
    proc = bundle.rootfs / "proc"
    if proc.is_dir() and not proc.is_symlink():
        proc.rmdir()
    (bundle.rootfs / "fakeproc").mkdir()
    proc.symlink_to("/fakeproc")
    bundle.args("true")
    r = rt.run(cid, bundle)
    assert r.rc != 0
    assert "proc" in r.err
    assert cid not in rt.ids()


def test_inheritable_capabilities_are_empty_unless_configured(rt, cid, bundle):
    """CVE-2022-29162 class: the runtime must not hand out inheritable capabilities."""
    bundle.args("cat", "/proc/self/status")
    out = rt.run_ok(cid, bundle)
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert int(fields["CapInh"], 16) == 0


def test_waiting_init_is_not_dumpable(rt, cid, bundle):
    """CVE-2016-9962 class: until it execs the user's program, the init holds
    the runtime's state; a process with the container's host uid must not be
    able to read it through /proc (or ptrace it)."""
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.args("true")
    rt.create(cid, bundle)
    pid = rt.state(cid)["pid"]
    probe = subprocess.run(["setpriv", "--reuid=100000", "--regid=100000", "--clear-groups",
                            "cat", f"/proc/{pid}/environ"], capture_output=True)
    assert probe.returncode != 0


def test_container_gets_a_session_keyring_of_its_own(rt, cid, bundle):
    """Keyrings are not namespaced: a container must not share its creator's
    session keyring (runc joins a new one; --no-new-keyring opts out)."""
    bundle.args("sleep", "1000")
    rt.create(cid, bundle)
    with open("/proc/keys") as keys:
        assert any(line.split()[-2].rstrip(":").endswith(cid) for line in keys if "keyring" in line)


def test_no_new_keyring_keeps_the_creators_keyring(rt, cid, bundle):
    bundle.args("sleep", "1000")
    rt.create(cid, bundle, "--no-new-keyring")
    with open("/proc/keys") as keys:
        assert not any(cid in line for line in keys)
