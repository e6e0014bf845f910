"""linux.namespaces: new, shared with the host, joined by path; user, time,
cgroup namespaces."""

from __future__ import annotations

import os
import subprocess

import pytest
from support.runtime import host_mounts_mentioning, is_runc, pid_alive, proc_status, wait_for

from .scripts import WAIT_FOR_STOP

# config type -> /proc/<pid>/ns entry
NS_FILE = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
           "cgroup": "cgroup", "user": "user"}


def _host_ns(name, pid="self"):
    return os.readlink(f"/proc/{pid}/ns/{name}")


def _inside_ns(rt, cid, bundle, *names):
    bundle.sh("for n in " + " ".join(names) + "; do readlink /proc/self/ns/$n; done")
    return dict(zip(names, rt.run_ok(cid, bundle).split(), strict=True))


def test_pid_namespace_makes_process_pid_1(rt, cid, bundle):
    bundle.sh("echo $$; cut -d' ' -f1 /proc/self/stat")
    assert rt.run_ok(cid, bundle).split()[0] == "1"


def test_pid_namespace_hides_host_processes(rt, cid, bundle):
    bundle.args("ps", "-o", "pid,comm")
    assert rt.run_ok(cid, bundle).split() == ["PID", "COMMAND", "1", "ps"]


@pytest.mark.parametrize("ns", ["pid", "network", "ipc", "uts", "mount", "cgroup"])
def test_new_namespace_differs_from_host(rt, cid, bundle, ns):
    if ns not in bundle.namespace_types():
        bundle.linux["namespaces"].append({"type": ns})
    name = NS_FILE[ns]
    assert _inside_ns(rt, cid, bundle, name)[name] != _host_ns(name)


@pytest.mark.parametrize("ns", ["network", "ipc", "uts", "cgroup", "pid"])
def test_omitted_namespace_is_shared_with_host(rt, cid, bundle, ns):
    bundle.drop_namespace(ns)
    if ns == "uts":
        del bundle.config["hostname"]
    name = NS_FILE[ns]
    assert _inside_ns(rt, cid, bundle, name)[name] == _host_ns(name)


def _without_mount_namespace(bundle):
    bundle.drop_namespace("mount")
    bundle.config["root"]["readonly"] = True
    (bundle.rootfs / "marker").write_text("rootfs\n")
    return bundle


@pytest.mark.rootlet_only
def test_without_mount_namespace_the_container_shares_the_hosts_and_sees_its_rootfs(rt, cid, bundle):
    """config-linux.md: an omitted namespace is the runtime's. The process is
    chrooted into the rootfs, with the config's mounts and masks in place
    (runc 1.1 refuses masked and read-only paths without a mount namespace)."""
    _without_mount_namespace(bundle).sh(
        "readlink /proc/self/ns/mnt; cat /marker; touch /x 2>/dev/null && echo writable || echo read-only; "
        "wc -c < /proc/timer_list")
    ns, marker, writable, masked = rt.run_ok(cid, bundle).split()
    assert ns == _host_ns("mnt")
    assert marker == "rootfs"
    assert writable == "read-only"
    assert masked == "0"  # /dev/null over it


@pytest.mark.rootlet_only
def test_without_mount_namespace_delete_takes_every_mount_back(rt, cid, bundle):
    """The container's mounts are the host's while it lives, and only then
    (runc 1.1 leaves them behind)."""
    _without_mount_namespace(bundle).args("sleep", "1000")
    rt.create(cid, bundle)
    rootfs = str(bundle.rootfs)
    during = host_mounts_mentioning(rootfs)
    assert any(f" {rootfs}/proc " in line for line in during), during
    rt.ok("delete", "--force", cid)
    assert host_mounts_mentioning(rootfs) == []


def test_without_mount_namespace_a_failed_create_leaves_no_mount(rt, cid, bundle):
    _without_mount_namespace(bundle).bind("/nonexistent-rootlet-source", "/x")
    assert rt.run(cid, bundle).rc != 0
    assert host_mounts_mentioning(str(bundle.rootfs)) == []


@pytest.mark.rootlet_only
def test_without_mount_namespace_exec_enters_the_containers_root(rt, cid, bundle):
    """runc 1.1 leaves an exec'd process in the host's root here."""
    _without_mount_namespace(bundle).args("sleep", "1000")
    rt.create(cid, bundle)
    rt.ok("start", cid)
    assert rt.ok("exec", cid, "cat", "/marker").out.strip() == "rootfs"
    rt.ok("delete", "--force", cid)


def test_network_namespace_has_only_loopback(rt, cid, bundle):
    bundle.sh("ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1")
    assert rt.run_ok(cid, bundle).split() == ["lo", "lo"]


def test_loopback_is_up_in_new_network_namespace(rt, cid, bundle):
    # runc configures "lo" up in a network namespace it creates.
    bundle.sh("ip -o link show lo")
    assert "UP" in rt.run_ok(cid, bundle).split("<", 1)[1].split(">", 1)[0].split(",")


def test_uts_namespace_hostname_does_not_touch_host(rt, cid, bundle):
    host = os.uname().nodename
    bundle.config["hostname"] = "uts-test-ct"
    bundle.args("hostname")
    assert rt.run_ok(cid, bundle).strip() == "uts-test-ct"
    assert os.uname().nodename == host


def test_ipc_namespace_isolates_sysv_ipc(rt, cid, bundle):
    bundle.args("cat", "/proc/sysvipc/shm")
    lines = rt.run_ok(cid, bundle).splitlines()
    assert len(lines) == 1  # header only


@pytest.fixture
def holder():
    """Start `unshare --<ns> sleep` processes whose namespaces tests join."""
    procs = []

    def start(*flags):
        p = subprocess.Popen(["unshare", *flags, "sleep", "300"])
        procs.append(p)
        names = [NS_FILE[f.removeprefix("--").replace("net", "network")]
                 for f in flags]
        wait_for(lambda: all(_host_ns(n, p.pid) != _host_ns(n) for n in names),
                 what="unshare to enter its namespaces")
        return p.pid

    yield start
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("ns", ["network", "ipc", "uts"])
def test_join_existing_namespace_by_path(rt, cid, bundle, holder, ns):
    flag = {"network": "--net", "ipc": "--ipc", "uts": "--uts"}[ns]
    pid = holder(flag)
    name = NS_FILE[ns]
    bundle.linux["namespaces"] = [
        {"type": t, "path": f"/proc/{pid}/ns/{name}"} if t == ns else {"type": t}
        for t in bundle.namespace_types()
    ]
    if ns == "uts":
        del bundle.config["hostname"]
    assert _inside_ns(rt, cid, bundle, name)[name] == _host_ns(name, pid)
    assert pid_alive(pid)


def test_joined_network_namespace_sees_its_interfaces(rt, cid, bundle, holder):
    pid = holder("--net")
    subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "add", "dummy-rt0",
                    "type", "dummy"], check=False, capture_output=True)
    has_dummy = b"dummy-rt0" in subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-o", "link"], capture_output=True).stdout
    bundle.linux["namespaces"] = [
        {"type": "network", "path": f"/proc/{pid}/ns/net"} if t == "network" else {"type": t}
        for t in bundle.namespace_types()
    ]
    bundle.sh("tail -n +3 /proc/net/dev | cut -d: -f1")
    names = rt.run_ok(cid, bundle).split()
    assert "lo" in names
    if has_dummy:
        assert "dummy-rt0" in names


# -- user namespace ----------------------------------------------------------------

def _userns(bundle, host_base=100000, size=65536):
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]


def test_user_namespace_maps_container_root(rt, cid, bundle):
    _userns(bundle)
    bundle.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    out = rt.run_ok(cid, bundle).splitlines()
    assert out[:2] == ["0", "0"]
    assert out[2].split() == ["0", "100000", "65536"]
    assert out[3].split() == ["0", "100000", "65536"]


def test_user_namespace_process_runs_as_mapped_host_uid(rt, cid, bundle):
    _userns(bundle)
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    st = rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    status = proc_status(st["pid"])
    assert status["Uid"].split() == ["100000"] * 4
    assert status["Gid"].split() == ["100000"] * 4


def test_user_namespace_non_root_user_maps_into_range(rt, cid, bundle):
    _userns(bundle)
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    out = bundle.shared_dir()
    bundle.sh(WAIT_FOR_STOP)
    st = rt.run_detached(cid, bundle)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    assert proc_status(st["pid"])["Uid"].split() == ["101000"] * 4


def test_user_namespace_devices_still_work(rt, cid, bundle):
    _userns(bundle)
    bundle.sh("echo x > /dev/null && head -c 2 /dev/zero | od -An -tx1")
    assert rt.run_ok(cid, bundle).split() == ["00", "00"]


def test_user_namespace_host_files_owned_by_unmapped_ids_show_as_nobody(rt, cid, bundle):
    _userns(bundle)
    bundle.args("stat", "-c", "%u:%g", "/bin/busybox")
    assert rt.run_ok(cid, bundle).strip() == "65534:65534"


# -- time namespace ------------------------------------------------------------------

TEN_DAYS = 10 * 86400


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/time"),
                    reason="kernel without time namespaces (/proc/self/ns/time missing)")
@pytest.mark.xfail(is_runc(), strict=True,
                   reason="runc 1.1 does not support the time namespace/timeOffsets "
                          "(added in runc 1.2)")
def test_time_namespace_offsets_shift_uptime(rt, cid, bundle):
    bundle.linux["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {
        "boottime": {"secs": TEN_DAYS, "nanosecs": 0},
        "monotonic": {"secs": TEN_DAYS, "nanosecs": 0},
    }
    with open("/proc/uptime") as f:
        before = float(f.read().split()[0])
    bundle.args("cat", "/proc/uptime")
    inside = float(rt.run_ok(cid, bundle).split()[0])
    with open("/proc/uptime") as f:
        after = float(f.read().split()[0])
    assert before + TEN_DAYS - 1 <= inside <= after + TEN_DAYS + 1


# -- cgroup namespace ------------------------------------------------------------

def test_cgroup_namespace_shows_root_cgroup(rt, cid, bundle):
    bundle.linux["namespaces"].append({"type": "cgroup"})
    bundle.args("cat", "/proc/self/cgroup")
    lines = rt.run_ok(cid, bundle).splitlines()
    assert lines
    for line in lines:
        assert line.split(":", 2)[2] == "/", line
