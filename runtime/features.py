"""The `features` document (runtime-spec features.md), telling only the truth:
what this build of rootlet implements today."""

from __future__ import annotations

from runtime import capabilities, mountopts

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def _seccomp() -> dict:
    from runtime import seccomp

    return seccomp.features()


def _libseccomp_version() -> str:
    from runtime import _seccomp

    return ".".join(map(str, _seccomp.version()))


def document() -> dict:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": HOOKS,
        "mountOptions": mountopts.known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": list(capabilities.NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.opencontainers.runc.no-pivot": "false",
            "io.github.seccomp.libseccomp.version": _libseccomp_version(),
            "io.github.rootlet.note":
                "linux.resources.rdma and linux.intelRdt are refused",
        },
    }
