"""mounts[], maskedPaths, readonlyPaths, rootfsPropagation, --no-pivot."""

from __future__ import annotations

import os
import subprocess

import pytest
from support import mountinfo
from support.bundle import Bundle
from support.runtime import is_runc, wait_for

from .scripts import WAIT_FOR_STOP


def _mounts_inside(rt, cid, bundle, script="") -> tuple[list[mountinfo.Mount], str]:
    """Run *script* then dump mountinfo; return parsed mounts and script output."""
    bundle.sh(f"{script}\necho ===MOUNTINFO===; cat /proc/self/mountinfo")
    out = rt.run_ok(cid, bundle)
    head, _, tail = out.partition("===MOUNTINFO===\n")
    return mountinfo.parse(tail), head


@pytest.fixture
def host_src(testdir):
    src = testdir / "src"
    src.mkdir()
    (src / "hello").write_text("hello from host\n")
    os.chmod(src, 0o777)
    return src


# -- bind mounts -----------------------------------------------------------------------

def test_bind_mount_readonly(rt, cid, bundle, host_src):
    bundle.bind(host_src, "/mnt/ro", "ro")
    mounts, out = _mounts_inside(
        rt, cid, bundle, "cat /mnt/ro/hello; touch /mnt/ro/new 2>&1; echo rc=$?")
    assert "hello from host" in out
    assert "Read-only file system" in out and "rc=1" in out
    assert not (host_src / "new").exists()
    assert "ro" in mountinfo.find(mounts, "/mnt/ro").options


def test_bind_mount_readwrite(rt, cid, bundle, host_src):
    bundle.bind(host_src, "/mnt/rw", "rw")
    mounts, _ = _mounts_inside(rt, cid, bundle, "echo written > /mnt/rw/new")
    assert (host_src / "new").read_text() == "written\n"
    assert "rw" in mountinfo.find(mounts, "/mnt/rw").options


def test_bind_mount_of_a_file(rt, cid, bundle, testdir):
    src = testdir / "single-file"
    src.write_text("just one file\n")
    bundle.bind(src, "/etc/single", "ro")
    bundle.args("cat", "/etc/single")
    assert rt.run_ok(cid, bundle) == "just one file\n"


def test_bind_mount_type_none_with_bind_option(rt, cid, bundle, host_src):
    bundle.add_mount("/mnt/n", str(host_src), "none", ["bind", "ro"])
    bundle.args("cat", "/mnt/n/hello")
    assert rt.run_ok(cid, bundle) == "hello from host\n"


@pytest.mark.parametrize("flag", ["nosuid", "nodev", "noexec"])
def test_mount_flags_show_in_mountinfo(rt, cid, bundle, host_src, flag):
    bundle.bind(host_src, "/mnt/f", flag)
    bundle.add_mount("/mnt/t", "tmpfs", "tmpfs", [flag])
    mounts, _ = _mounts_inside(rt, cid, bundle)
    assert flag in mountinfo.find(mounts, "/mnt/f").options
    assert flag in mountinfo.find(mounts, "/mnt/t").options


def test_noexec_mount_refuses_exec(rt, cid, bundle, testdir):
    src = testdir / "bin"
    src.mkdir()
    tool = src / "tool"
    tool.write_text("#!/bin/sh\necho executed\n")
    tool.chmod(0o755)
    bundle.bind(src, "/opt/bin", "noexec")
    bundle.sh("/opt/bin/tool 2>&1; echo rc=$?")
    out = rt.run_ok(cid, bundle)
    assert "executed" not in out
    assert "rc=126" in out


@pytest.fixture
def host_src_with_submount(host_src):
    sub = host_src / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(sub)], check=True)
    try:
        (sub / "in-submount").write_text("nested\n")
        yield host_src
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


def test_rbind_includes_submounts(rt, cid, bundle, host_src_with_submount):
    bundle.add_mount("/mnt/r", str(host_src_with_submount), "bind", ["rbind"])
    bundle.args("cat", "/mnt/r/sub/in-submount")
    assert rt.run_ok(cid, bundle) == "nested\n"


def test_plain_bind_excludes_submounts(rt, cid, bundle, host_src_with_submount):
    bundle.bind(host_src_with_submount, "/mnt/b")
    bundle.sh("ls -A /mnt/b/sub; echo end")
    assert rt.run_ok(cid, bundle).split() == ["end"]


# -- tmpfs / mqueue / destinations ---------------------------------------------------

def test_tmpfs_size_and_mode(rt, cid, bundle):
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "size=1m", "mode=1770"])
    mounts, out = _mounts_inside(rt, cid, bundle, "stat -c %a /scratch")
    assert out.strip() == "1770"
    m = mountinfo.find(mounts, "/scratch")
    assert m.fstype == "tmpfs"
    assert "size=1024k" in m.super_options
    assert "mode=1770" in m.super_options


def test_tmpfs_size_is_enforced(rt, cid, bundle):
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["size=64k"])
    bundle.sh("dd if=/dev/zero of=/scratch/big bs=1k count=200 2>&1; echo rc=$?")
    out = rt.run_ok(cid, bundle)
    assert "rc=1" in out and "No space left" in out


def test_mqueue_mounted_at_dev_mqueue(rt, cid, bundle):
    mounts, _ = _mounts_inside(rt, cid, bundle)
    assert mountinfo.find(mounts, "/dev/mqueue").fstype == "mqueue"


def test_proc_is_the_containers_own(rt, cid, bundle):
    mounts, out = _mounts_inside(rt, cid, bundle, "ls /proc | grep -c '^[0-9]'")
    assert mountinfo.find(mounts, "/proc").fstype == "proc"
    # only sh, cat (and maybe a transient child) are visible, not host processes
    assert int(out.strip()) <= 3


def test_sysfs_is_readonly(rt, cid, bundle):
    mounts, _ = _mounts_inside(rt, cid, bundle)
    m = mountinfo.find(mounts, "/sys")
    assert m.fstype == "sysfs" and "ro" in m.options


def test_missing_destination_directory_is_created(rt, cid, bundle, host_src):
    assert not (bundle.rootfs / "new").exists()
    bundle.bind(host_src, "/new/deep/dir", "ro")
    bundle.args("cat", "/new/deep/dir/hello")
    assert rt.run_ok(cid, bundle) == "hello from host\n"
    assert (bundle.rootfs / "new" / "deep" / "dir").is_dir()


def test_missing_destination_file_is_created_for_file_source(rt, cid, bundle, testdir):
    src = testdir / "f"
    src.write_text("file\n")
    bundle.bind(src, "/new/file", "ro")
    bundle.args("cat", "/new/file")
    assert rt.run_ok(cid, bundle) == "file\n"
    assert (bundle.rootfs / "new" / "file").is_file()


def test_mounts_are_applied_in_order(rt, cid, bundle, host_src):
    bundle.add_mount("/stack", "tmpfs", "tmpfs", ["size=1m"])
    bundle.bind(host_src, "/stack/inner", "ro")
    bundle.args("cat", "/stack/inner/hello")
    assert rt.run_ok(cid, bundle) == "hello from host\n"


def test_container_mounts_do_not_appear_on_host(rt, cid, bundle, host_src):
    out = bundle.shared_dir()
    bundle.bind(host_src, "/mnt/ro", "ro")
    bundle.sh(WAIT_FOR_STOP)
    rt.create(cid, bundle)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    with open("/proc/self/mountinfo") as f:
        host = f.read()
    assert str(bundle.rootfs) not in host


# -- maskedPaths / readonlyPaths ------------------------------------------------------

def test_masked_file_reads_empty(rt, cid, bundle):
    # /proc/kcore is absent on this kernel; /proc/timer_list is masked too.
    with open("/proc/timer_list") as f:
        assert f.read(100), "host /proc/timer_list unexpectedly empty"
    bundle.sh("wc -c < /proc/timer_list")
    assert rt.run_ok(cid, bundle).strip() == "0"


def test_masked_path_absent_from_proc_is_fine(rt, cid, bundle):
    bundle.linux["maskedPaths"].append("/proc/no-such-entry")
    bundle.sh("echo ran")
    assert rt.run_ok(cid, bundle).strip() == "ran"


def test_masked_directory_is_empty(rt, cid, bundle):
    assert os.listdir("/sys/firmware"), "host /sys/firmware unexpectedly empty"
    bundle.sh("ls -A /sys/firmware; echo end")
    assert rt.run_ok(cid, bundle).split() == ["end"]


def test_custom_masked_paths(rt, cid, bundle):
    (bundle.rootfs / "etc" / "secret").write_text("s3cret\n")
    (bundle.rootfs / "secretdir").mkdir()
    (bundle.rootfs / "secretdir" / "key").write_text("k3y\n")
    bundle.linux["maskedPaths"] += ["/etc/secret", "/secretdir", "/does/not/exist"]
    bundle.sh("cat /etc/secret; ls -A /secretdir; echo end")
    assert rt.run_ok(cid, bundle).split() == ["end"]


def test_readonly_proc_sys_refuses_writes(rt, cid, bundle):
    bundle.sh("{ echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>&1; echo rc=$?")
    out = rt.run_ok(cid, bundle)
    assert "Read-only file system" in out and "rc=1" in out


def test_custom_readonly_path(rt, cid, bundle):
    bundle.config["root"]["readonly"] = False
    (bundle.rootfs / "frozen").mkdir()
    bundle.linux["readonlyPaths"].append("/frozen")
    bundle.sh("touch /frozen/x 2>&1; echo rc=$?; touch /thawed && echo thawed-ok")
    out = rt.run_ok(cid, bundle)
    assert "Read-only file system" in out and "rc=1" in out
    assert "thawed-ok" in out
    assert not (bundle.rootfs / "frozen" / "x").exists()


# -- rootfsPropagation / --no-pivot --------------------------------------------------------

@pytest.fixture
def mounted_rootfs_bundle(testdir, rootfs_template, cid):
    """A bundle on a shared tmpfs whose rootfs is itself a mount point (as an
    engine's overlay rootfs is), so propagation to and from it is observable.

    runc makes the *parent* mount of the rootfs private before pivot_root, so
    for a rootfs that is a plain directory the container's / always ends up
    private whatever rootfsPropagation says."""
    base = testdir / "shared"
    base.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(base)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(base)], check=True)
        b = Bundle(base, rootfs_template, cid.removeprefix("ct-"))
        (b.rootfs / "mnt" / "late").mkdir(parents=True)
        subprocess.run(["mount", "--bind", str(b.rootfs), str(b.rootfs)], check=True)
        yield b
    finally:
        subprocess.run(["umount", "-R", "-l", str(base)], check=False)


RUNC_PROPAGATION = pytest.mark.xfail(
    is_runc(), strict=True,
    reason="runc 1.1.5 makes the rootfs mount private before pivot_root and never "
           "re-applies rootfsPropagation, so / is always private")


@pytest.mark.parametrize("propagation,visible", [
    pytest.param("slave", True, marks=RUNC_PROPAGATION), ("private", False)])
def test_rootfs_propagation_of_host_mounts(rt, cid, mounted_rootfs_bundle, propagation,
                                           visible):
    b = mounted_rootfs_bundle
    out = b.shared_dir()
    b.config["linux"]["rootfsPropagation"] = propagation
    b.sh("touch /out/started; while [ ! -e /out/go ]; do sleep 0.02; done; "
         "cat /mnt/late/marker > /out/seen 2>/dev/null; touch /out/done")
    rt.create(cid, b)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    late = b.rootfs / "mnt" / "late"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(late)], check=True)
    try:
        (late / "marker").write_text("propagated\n")
        (out / "go").touch()
        wait_for(lambda: (out / "done").exists(), what="container to look")
    finally:
        subprocess.run(["umount", "-l", str(late)], check=False)
    seen = (out / "seen").read_text()
    assert (seen == "propagated\n") is visible, seen


@pytest.mark.parametrize("propagation,tag", [
    ("private", "private"),
    pytest.param("slave", "slave", marks=RUNC_PROPAGATION),
    pytest.param("shared", "shared", marks=RUNC_PROPAGATION)])
def test_rootfs_propagation_shows_on_root_mount(rt, cid, mounted_rootfs_bundle,
                                                propagation, tag):
    b = mounted_rootfs_bundle
    b.config["linux"]["rootfsPropagation"] = propagation
    mounts, _ = _mounts_inside(rt, cid, b)
    assert mountinfo.find(mounts, "/").propagation == tag


def test_no_pivot_runs_in_rootfs(rt, cid, bundle):
    (bundle.rootfs / "etc" / "marker").write_text(bundle.token)
    out = bundle.shared_dir()
    bundle.sh("cat /etc/marker > /out/marker; ls / > /out/ls")
    rt.create(cid, bundle, "--no-pivot")
    rt.ok("start", cid)
    rt.wait_status(cid, "stopped")
    assert (out / "marker").read_text() == bundle.token
    listing = (out / "ls").read_text().split()
    assert "bin" in listing and "work" not in listing and "opt" not in listing
