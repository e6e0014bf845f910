"""The `features` document (runtime-spec features.md), telling only the truth:
what this build of rootlet implements today."""

from __future__ import annotations

from runtime import capabilities, mountopts

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def document() -> dict:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": HOOKS,
        "mountOptions": mountopts.known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": list(capabilities.NAMES),
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.opencontainers.runc.no-pivot": "false",
            "io.github.rootlet.note":
                "linux.resources limits and linux.seccomp are refused until implemented",
        },
    }
