"""config-linux.md#control-groups and #seccomp.

A runtime may not implement these (rootlet refuses them for now); a refusing
create makes the check SKIP with the runtime's own reason. Limits are read on
the host from the container's cgroup (v1 controller hierarchy, or the v2
unified one on a pure v2 host).
"""

from __future__ import annotations

from pathlib import Path

from ..context import Container, Context
from ..registry import Skip, check, expect

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_paths(pid: int) -> dict[str, str]:
    """controller -> path, from /proc/PID/cgroup; '' is the v2 hierarchy."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _limit_file(container: Container, controller: str, v1_file: str, v2_file: str) -> Path:
    """The container's limit file: the v1 controller's, else the pure-v2 one."""
    paths = _cgroup_paths(container.pid())
    candidates = []
    if controller in paths:
        candidates.append(CGROUP_ROOT / controller / paths[controller].lstrip("/") / v1_file)
    if "" in paths:
        candidates.append(CGROUP_ROOT / paths[""].lstrip("/") / v2_file)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise Skip(f"no {controller} cgroup file for the container on this host ({paths})")


def _container_with_resources(ctx: Context, resources: dict) -> Container:
    bundle = ctx.bundle("sleep", "600")
    bundle.linux["resources"] = resources
    container = ctx.create_or_refused(bundle)
    container.must_start()
    return container


@check("config-linux.md#cgroups-path", "MUST",
       "cgroupsPath (absolute) places the container at that path in each hierarchy")
def check_cgroups_path(ctx: Context) -> None:
    bundle = ctx.bundle("sleep", "600")
    wanted = f"/{ctx.new_id()}-cgpath"
    bundle.linux["cgroupsPath"] = wanted
    container = ctx.create_or_refused(bundle)
    paths = _cgroup_paths(container.pid())
    key = "memory" if "memory" in paths else ""
    expect(paths.get(key) == wanted, f"the process is in {paths.get(key)!r}, wanted {wanted!r}")


@check("config-linux.md#memory", "MUST", "memory.limit is the cgroup's memory limit")
def check_memory_limit(ctx: Context) -> None:
    container = _container_with_resources(ctx, {"memory": {"limit": 64 * 1024 * 1024}})
    limit = _limit_file(container, "memory", "memory.limit_in_bytes", "memory.max").read_text().strip()
    expect(limit == str(64 * 1024 * 1024), f"the memory limit is {limit}")


@check("config-linux.md#pids", "MUST", "pids.limit is the cgroup's pids.max")
def check_pids_limit(ctx: Context) -> None:
    container = _container_with_resources(ctx, {"pids": {"limit": 37}})
    limit = _limit_file(container, "pids", "pids.max", "pids.max").read_text().strip()
    expect(limit == "37", f"pids.max is {limit}")


@check("config-linux.md#cpu", "MUST", "cpu.shares is the cgroup's cpu.shares (v1)")
def check_cpu_shares(ctx: Context) -> None:
    container = _container_with_resources(ctx, {"cpu": {"shares": 512}})
    shares_file = _limit_file(container, "cpu", "cpu.shares", "cpu.weight")
    if shares_file.name != "cpu.shares":
        raise Skip("cgroup v2 host: shares are converted to cpu.weight")
    expect(shares_file.read_text().strip() == "512", f"cpu.shares is {shares_file.read_text().strip()}")


OPEN_RESULTS = ("for d in fuse net/tun; do "
                "(exec 3</dev/$d) 2>/dev/null && echo $d-read=opened || echo $d-read=denied; "
                "(exec 3>/dev/$d) 2>/dev/null && echo $d-write=opened || echo $d-write=denied; done")


@check("config-linux.md#allowed-device-list", "MUST",
       "device cgroup rules apply in order: deny all, then allow one (host nodes bind-mounted in)")
def check_device_cgroup_rules(ctx: Context) -> None:
    """The nodes come from bind mounts, not linux.devices, so that no runtime
    has a reason to add rules of its own for them."""
    bundle = ctx.bundle("sh", "-c", OPEN_RESULTS)
    for node in ("/dev/fuse", "/dev/net/tun"):
        bundle.add_mount(node, node, "bind", ["bind"])
    bundle.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    ]}
    output = ctx.run(bundle, refusable=True).split()
    wanted = ["fuse-read=denied", "fuse-write=denied", "net/tun-read=opened", "net/tun-write=opened"]
    expect(output == wanted, f"device access: {output}")


@check("config-linux.md#allowed-device-list", "MUST",
       "a linux.devices node allowed only 'r' in the device cgroup cannot be opened for writing")
def check_device_cgroup_access(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", OPEN_RESULTS)
    bundle.linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666},
    ]
    bundle.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},
    ]}
    output = ctx.run(bundle, refusable=True).split()
    wanted = ["fuse-read=opened", "fuse-write=denied", "net/tun-read=opened", "net/tun-write=opened"]
    expect(output == wanted, f"device access: {output}")


@check("config-linux.md#seccomp", "MUST", "a seccomp rule with SCMP_ACT_ERRNO makes that syscall fail")
def check_seccomp_errno(ctx: Context) -> None:
    bundle = ctx.bundle("sh", "-c", "echo sysname=$(uname -s 2>/dev/null)")
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}],
    }
    output = ctx.run(bundle, refusable=True).strip()
    expect(output == "sysname=",
           f"with uname(2) failing, uname -s printed {output!r} (busybox prints nothing)")
