"""config.json turned into typed values, once, at the border.

Everything past this module works with these objects, never with the raw
JSON. The JSON Schema (runtime.spec.schema) has already checked types and
ranges; this module adds the rules a schema cannot say (paths relative to the
bundle, namespace combinations, what rootlet does not support yet), each
reported with the JSON path of the offending field.

Plain classes with __slots__ rather than dataclasses: importing dataclasses
costs ~25 ms, more than a whole container start.
"""

from __future__ import annotations

import os

from runtime.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


class Mount:
    __slots__ = ("destination", "type", "source", "options")

    def __init__(self, destination: str, type: str, source: str, options: list[str]):
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, path: str, args: list[str], env: list[str], timeout: int | None):
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout


class Device:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, path, type, major, minor, file_mode, uid, gid):
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int):
        self.container_id = container_id
        self.host_id = host_id
        self.size = size

    def line(self) -> str:
        return f"{self.container_id} {self.host_id} {self.size}\n"


class Process:
    __slots__ = (
        "terminal", "console_size", "uid", "gid", "umask", "additional_gids", "args", "env",
        "cwd", "capabilities", "rlimits", "no_new_privileges", "oom_score_adj",
    )

    def __init__(self, raw: dict, where: str = "process"):
        user = raw.get("user", {})
        self.terminal: bool = raw.get("terminal", False)
        size = raw.get("consoleSize")
        self.console_size: tuple[int, int] | None = (size["height"], size["width"]) if size else None
        self.uid: int = user.get("uid", 0)
        self.gid: int = user.get("gid", 0)
        self.umask: int | None = user.get("umask")
        self.additional_gids: list[int] = user.get("additionalGids", [])
        self.args: list[str] = raw.get("args", [])
        if not self.args:
            raise ConfigError(f"{where}.args", "must not be empty")
        self.env: list[str] = raw.get("env", [])
        self.cwd: str = raw.get("cwd", "/")
        if not self.cwd.startswith("/"):
            raise ConfigError(f"{where}.cwd", f"{self.cwd!r} is not an absolute path")
        # An absent set, or an absent `capabilities`, is an empty set, as in runc.
        caps = raw.get("capabilities") or {}
        self.capabilities: dict[str, list[str]] = {
            name: caps.get(name, [])
            for name in ("bounding", "effective", "inheritable", "permitted", "ambient")
        }
        self.rlimits: list[tuple[str, int, int]] = [
            (limit["type"], limit["soft"], limit["hard"]) for limit in raw.get("rlimits", [])
        ]
        self.no_new_privileges: bool = raw.get("noNewPrivileges", False)
        self.oom_score_adj: int | None = raw.get("oomScoreAdj")
        # A label that cannot be applied must fail, not be dropped (config.md).
        if raw.get("apparmorProfile"):
            raise ConfigError(f"{where}.apparmorProfile", "AppArmor profiles are not supported by rootlet")
        if raw.get("selinuxLabel"):
            raise ConfigError(f"{where}.selinuxLabel", "SELinux labels are not supported by rootlet")


class Linux:
    __slots__ = (
        "namespaces", "uid_mappings", "gid_mappings", "time_offsets", "devices", "masked_paths",
        "readonly_paths", "rootfs_propagation", "sysctl", "personality", "cgroups_path", "resources",
        "seccomp",
    )

    def __init__(self, raw: dict):
        self.namespaces: dict[str, str] = _namespaces(raw.get("namespaces", []))
        self.uid_mappings = _mappings(raw.get("uidMappings", []))
        self.gid_mappings = _mappings(raw.get("gidMappings", []))
        self.time_offsets: dict[str, dict] = raw.get("timeOffsets", {})
        self.devices = [
            Device(d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                   d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0))
            for d in raw.get("devices", [])
        ]
        self.masked_paths: list[str] = raw.get("maskedPaths", [])
        self.readonly_paths: list[str] = raw.get("readonlyPaths", [])
        self.rootfs_propagation: str = raw.get("rootfsPropagation", "")
        self.sysctl: dict[str, str] = raw.get("sysctl", {})
        self.personality: int | None = _personality(raw.get("personality"))
        self.cgroups_path: str = raw.get("cgroupsPath", "")
        self.resources: dict = raw.get("resources", {})
        self.seccomp = None  # a runtime.seccomp.SeccompPlan; that module loads only when needed
        if raw.get("seccomp"):
            from runtime import seccomp

            self.seccomp = seccomp.plan(raw["seccomp"])
        _refuse_unsupported(raw)
        self._check_namespace_rules()

    def _check_namespace_rules(self) -> None:
        if (self.uid_mappings or self.gid_mappings) and "user" not in self.namespaces:
            raise ConfigError("linux.uidMappings", "mappings need a user namespace in linux.namespaces")
        if "user" in self.namespaces and not self.namespaces["user"]:
            if not self.uid_mappings or not self.gid_mappings:
                raise ConfigError("linux.uidMappings", "a new user namespace needs uid and gid mappings")
        if self.time_offsets and ("time" not in self.namespaces or self.namespaces["time"]):
            raise ConfigError("linux.timeOffsets", "offsets need a new time namespace in linux.namespaces")


def _namespaces(entries: list[dict]) -> dict[str, str]:
    namespaces: dict[str, str] = {}
    for index, entry in enumerate(entries):
        kind = entry["type"]
        if kind in namespaces:
            raise ConfigError(f"linux.namespaces[{index}].type", f"namespace {kind!r} is listed twice")
        namespaces[kind] = entry.get("path", "")
    return namespaces


def _mappings(entries: list[dict]) -> list[IdMapping]:
    return [IdMapping(m["containerID"], m["hostID"], m["size"]) for m in entries]


def _personality(raw: dict | None) -> int | None:
    """personality(2) persona: PER_LINUX or PER_LINUX32 (config-linux.md "Personality")."""
    if raw is None:
        return None
    personas = {"LINUX": 0x0000, "LINUX32": 0x0008}
    if raw.get("domain") not in personas:
        raise ConfigError("linux.personality.domain", f"{raw.get('domain')!r} is not one of LINUX, LINUX32")
    if raw.get("flags"):
        raise ConfigError("linux.personality.flags", "no personality flags are supported")
    return personas[raw["domain"]]


def _refuse_unsupported(raw: dict) -> None:
    if raw.get("intelRdt"):
        raise ConfigError("linux.intelRdt", "Intel RDT is not supported")
    if raw.get("mountLabel"):
        raise ConfigError("linux.mountLabel", "SELinux mount labels are not supported by rootlet")


def _mount(index: int, raw: dict) -> Mount:
    options = raw.get("options", [])
    if "uidMappings" in raw or "gidMappings" in raw or "idmap" in options or "ridmap" in options:
        raise ConfigError(f"mounts[{index}]", "idmapped mounts are not supported yet")
    return Mount(raw["destination"], raw.get("type", ""), raw.get("source", ""), options)


class Config:
    """A validated config.json of one bundle."""

    __slots__ = (
        "oci_version", "bundle", "rootfs", "root_readonly", "mounts", "process", "hostname",
        "domainname", "hooks", "annotations", "linux", "raw_process",
    )

    def __init__(self, raw: dict, bundle: str):
        self.oci_version: str = raw["ociVersion"]
        self.bundle = bundle
        root = raw.get("root")
        if root is None:
            raise ConfigError("root", "is required on Linux")
        self.rootfs = os.path.normpath(os.path.join(bundle, root["path"]))
        if not os.path.isdir(self.rootfs):
            raise ConfigError("root.path", f"rootfs {self.rootfs} is not a directory")
        self.root_readonly: bool = root.get("readonly", False)
        self.mounts = [_mount(index, m) for index, m in enumerate(raw.get("mounts", []))]
        self.process = Process(raw["process"]) if "process" in raw else None
        # kept as JSON for `exec`, which starts from the container's process
        self.raw_process: dict = raw.get("process", {})
        self.hostname: str = raw.get("hostname", "")
        self.domainname: str = raw.get("domainname", "")
        self.hooks: dict[str, list[Hook]] = {
            phase: [Hook(h["path"], h.get("args", []), h.get("env", []), h.get("timeout"))
                    for h in hooks]
            for phase, hooks in raw.get("hooks", {}).items()
        }
        self.annotations: dict[str, str] = raw.get("annotations", {})
        if "linux" not in raw:
            raise ConfigError("linux", "is required: rootlet runs Linux containers")
        self.linux = Linux(raw["linux"])
        self._check_uts()

    def _check_uts(self) -> None:
        for field in ("hostname", "domainname"):
            if getattr(self, field) and ("uts" not in self.linux.namespaces):
                raise ConfigError(field, "setting it needs a uts namespace in linux.namespaces")
