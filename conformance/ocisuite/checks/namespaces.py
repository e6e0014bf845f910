"""config-linux.md#namespaces, #user-namespace-mappings, #offset-for-time-namespace,
and config.md#hostname / #domainname (which live in the UTS namespace)."""

from __future__ import annotations

import os

from ..bundle import Bundle
from ..context import Context, parse_lines
from ..inspect import NS_FILES, host_namespace, status_fields
from ..registry import check, expect

ALL_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
ID_MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]
PRINT_NAMESPACES = "; ".join(f"echo {t}=$(readlink /proc/self/ns/{f})" for t, f in NS_FILES.items())


def _with_user_namespace(bundle: Bundle) -> Bundle:
    bundle.add_namespace("user")
    bundle.linux["uidMappings"] = list(ID_MAPPING)
    bundle.linux["gidMappings"] = list(ID_MAPPING)
    return bundle


def _namespaces_seen(ctx: Context, bundle: Bundle, refusable: bool = False) -> dict[str, str]:
    return parse_lines(ctx.run_script(bundle, PRINT_NAMESPACES, refusable=refusable))


def _register_new_namespace_check(ns_type: str) -> None:
    def new_namespace_check(ctx: Context) -> None:
        bundle = ctx.bundle()
        if ns_type == "user":
            _with_user_namespace(bundle)
        else:
            bundle.add_namespace(ns_type)
        seen = _namespaces_seen(ctx, bundle, refusable=True).get(ns_type)
        host = host_namespace(NS_FILES[ns_type])
        expect(seen and seen != host, f"{ns_type}: the container is in {seen}, the runtime in {host}")

    new_namespace_check.__name__ = f"check_namespace_new_{ns_type}"
    since = "1.1.0" if ns_type == "time" else "1.0.0"
    check("config-linux.md#namespaces", "MUST",
          f"a {ns_type} namespace without path is a new namespace", since=since)(new_namespace_check)


for _ns_type in ALL_TYPES:
    _register_new_namespace_check(_ns_type)


@check("config-linux.md#namespaces", "SHOULD", "all eight namespace types are supported", since="1.1.0")
def check_namespace_types_supported(ctx: Context) -> None:
    refused = {}
    for ns_type in ALL_TYPES:
        bundle = ctx.bundle()
        if ns_type == "user":
            _with_user_namespace(bundle)
        else:
            bundle.add_namespace(ns_type)
        container, outcome = ctx.create(bundle)
        if container is None:
            refused[ns_type] = outcome.first_error_line()
    expect(not refused, f"create refused: {refused}")


@check("config-linux.md#namespaces", "MUST", "a namespace type not listed is inherited from the runtime")
def check_namespace_inherited(ctx: Context) -> None:
    bundle = ctx.bundle().namespaces("pid", "mount")
    del bundle.config["hostname"]
    seen = _namespaces_seen(ctx, bundle)
    differing = {t: seen.get(t) for t in ("network", "ipc", "uts")
                 if seen.get(t) != host_namespace(NS_FILES[t])}
    expect(not differing, f"not the runtime's namespaces: {differing}")


@check("config-linux.md#namespaces", "MUST", "with no mount namespace listed, the runtime's is inherited")
def check_namespace_inherited_mount(ctx: Context) -> None:
    bundle = ctx.bundle().namespaces("pid")
    del bundle.config["hostname"]
    # runc 1.1 refuses masked and read-only paths without a mount namespace;
    # this check is about the namespace alone.
    bundle.linux["maskedPaths"] = []
    bundle.linux["readonlyPaths"] = []
    seen = _namespaces_seen(ctx, bundle).get("mount")
    host = host_namespace(NS_FILES["mount"])
    expect(seen == host, f"the container is in {seen}, the runtime in {host}")


@check("config-linux.md#namespaces", "MUST", "a namespace with path joins that namespace (network, ipc, uts)")
def check_namespace_join_path(ctx: Context) -> None:
    owner = ctx.must_create(ctx.bundle("sleep", "600"))
    owner_pid = owner.pid()
    bundle = ctx.bundle()
    for ns_type in ("network", "ipc", "uts"):
        bundle.add_namespace(ns_type, f"/proc/{owner_pid}/ns/{NS_FILES[ns_type]}")
    del bundle.config["hostname"]
    seen = _namespaces_seen(ctx, bundle)
    wanted = {t: os.readlink(f"/proc/{owner_pid}/ns/{NS_FILES[t]}") for t in ("network", "ipc", "uts")}
    wrong = {t: seen.get(t) for t in wanted if seen.get(t) != wanted[t]}
    expect(not wrong, f"wanted {wanted}, got {wrong}")


@check("config-linux.md#namespaces", "MUST", "a path that is not a namespace of that type is an error")
def check_namespace_path_wrong_type(ctx: Context) -> None:
    bundle = ctx.bundle().add_namespace("network", f"/proc/{os.getpid()}/ns/ipc")
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted an ipc namespace file as the network namespace")


@check("config-linux.md#namespaces", "MUST", "duplicated namespace types are an error")
def check_namespace_duplicate(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.linux["namespaces"].append({"type": "network"})
    container, _ = ctx.create(bundle)
    expect(container is None, "create accepted two network namespace entries")


@check("config-linux.md#user-namespace-mappings", "MUST",
       "uidMappings/gidMappings are the user namespace's maps")
def check_user_mappings(ctx: Context) -> None:
    script = "cat /proc/self/uid_map /proc/self/gid_map; sleep 600"
    bundle = _with_user_namespace(ctx.bundle("sh", "-c", script))
    container = ctx.create_or_refused(bundle)
    container.must_start()
    container.wait_for_output("0")
    host_status = status_fields(open(f"/proc/{container.pid()}/status").read())
    maps = [line.split() for line in container.output().splitlines() if line.strip()]
    expect(maps == [["0", "100000", "65536"]] * 2, f"uid_map/gid_map read {maps}")
    expect(host_status.get("Uid", "").split()[:1] == ["100000"],
           f"the host sees the process as Uid {host_status.get('Uid')}")


@check("config-linux.md#user-namespace-mappings", "SHOULD",
       "the runtime does not chown the rootfs to realise the mapping")
def check_user_mappings_no_chown(ctx: Context) -> None:
    bundle = _with_user_namespace(ctx.bundle("true"))
    ctx.run(bundle, refusable=True)
    paths = (bundle.rootfs, bundle.rootfs / "bin/busybox", bundle.rootfs / "etc")
    owners = {(os.lstat(p).st_uid, os.lstat(p).st_gid) for p in paths}
    expect(owners == {(0, 0)}, f"rootfs owners changed to {owners}")


@check("config-linux.md#offset-for-time-namespace", "MUST",
       "timeOffsets set the time namespace's clock offsets",
       since="1.1.0")
def check_time_offsets(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/self/timens_offsets").add_namespace("time")
    bundle.linux["timeOffsets"] = {"monotonic": {"secs": 31536000, "nanosecs": 0},
                                   "boottime": {"secs": 63072000, "nanosecs": 5}}
    offsets = {line.split()[0]: line.split()[1:] for line in ctx.run(bundle, refusable=True).splitlines()
               if line.strip()}
    wanted = {"monotonic": ["31536000", "0"], "boottime": ["63072000", "5"]}
    expect(offsets == wanted, f"timens_offsets: {offsets}")


@check("config.md#hostname", "MUST", "hostname is the container's hostname")
def check_hostname(ctx: Context) -> None:
    bundle = ctx.bundle("hostname")
    bundle.config["hostname"] = "conformance-host"
    expect(ctx.run(bundle).strip() == "conformance-host", "hostname differs")


@check("config.md#domainname", "MUST", "domainname is the container's NIS domain name", since="1.1.0")
def check_domainname(ctx: Context) -> None:
    bundle = ctx.bundle("cat", "/proc/sys/kernel/domainname")
    bundle.config["domainname"] = "conformance.test"
    output = ctx.run(bundle).strip()
    expect(output == "conformance.test", f"domainname is {output!r}")

