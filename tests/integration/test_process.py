"""process.* and other per-container settings, observed from inside."""

from __future__ import annotations

import os
import socket

import pytest
from support.runtime import is_runc

CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6,
       "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
       "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def _mask(*names):
    return sum(1 << CAP[n] for n in names)


def _status(out):
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def _run_status(rt, cid, bundle):
    bundle.args("cat", "/proc/self/status")
    return _status(rt.run_ok(cid, bundle))


# -- user -------------------------------------------------------------------------

def test_user_uid_and_gid(rt, cid, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1001}
    st = _run_status(rt, cid, bundle)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4


def test_user_additional_gids(rt, cid, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20, 1001]}
    st = _run_status(rt, cid, bundle)
    assert sorted(map(int, st["Groups"].split())) == [10, 20, 1001]


def test_user_without_additional_gids_has_no_supplementary_groups(rt, cid, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    assert _run_status(rt, cid, bundle)["Groups"] == ""


def test_id_command_sees_configured_identity(rt, cid, bundle):
    bundle.process["user"] = {"uid": 1234, "gid": 4321}
    bundle.sh("id -u; id -g")
    assert rt.run_ok(cid, bundle).split() == ["1234", "4321"]


def test_umask(rt, cid, bundle):
    bundle.process["user"]["umask"] = 0o027
    bundle.sh("umask; grep Umask /proc/self/status")
    out = rt.run_ok(cid, bundle).split()
    assert out[0] == "0027"
    assert out[-1] == "0027"


def test_default_umask_is_0022(rt, cid, bundle):
    bundle.sh("umask")
    assert rt.run_ok(cid, bundle).strip() == "0022"


# -- cwd / env / args ----------------------------------------------------------------

def test_cwd(rt, cid, bundle):
    bundle.process["cwd"] = "/var/tmp"
    bundle.args("pwd")
    assert rt.run_ok(cid, bundle).strip() == "/var/tmp"


def test_cwd_is_created_when_missing(rt, cid, bundle):
    # runc creates a missing cwd inside the rootfs rather than failing.
    bundle.config["root"]["readonly"] = False
    bundle.process["cwd"] = "/work/dir"
    bundle.args("pwd")
    assert rt.run_ok(cid, bundle).strip() == "/work/dir"
    assert (bundle.rootfs / "work" / "dir").is_dir()


def test_env_is_passed_to_process(rt, cid, bundle):
    bundle.process["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/home/x"]
    bundle.args("env")
    env = rt.run_ok(cid, bundle).splitlines()
    for var in ("PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/home/x"):
        assert var in env
    assert not any(v.startswith("ROOTLET") or v.startswith("PYTEST") for v in env)


def test_env_does_not_leak_host_environment(rt, cid, bundle):
    bundle.process["env"] = ["PATH=/bin"]
    bundle.args("env")
    env = dict(v.split("=", 1) for v in rt.run_ok(cid, bundle).splitlines())
    host_only = {k for k in os.environ if k not in ("PATH", "HOME", "TERM", "container")}
    assert not host_only & set(env)


def test_home_defaults_from_passwd(rt, cid, bundle):
    # runc sets HOME from the rootfs /etc/passwd when process.env lacks it.
    bundle.process["env"] = ["PATH=/bin"]
    bundle.args("env")
    assert "HOME=/root" in rt.run_ok(cid, bundle).splitlines()


def test_args_are_looked_up_on_container_path(rt, cid, bundle):
    tool_dir = bundle.rootfs / "custombin"
    tool_dir.mkdir()
    tool = tool_dir / "hello-tool"
    tool.write_text("#!/bin/sh\necho hello-from-path \"$@\"\n")
    tool.chmod(0o755)
    bundle.process["env"] = ["PATH=/custombin:/bin"]
    bundle.args("hello-tool", "a", "b c")
    assert rt.run_ok(cid, bundle).strip() == "hello-from-path a b c"


def test_argv_is_passed_verbatim(rt, cid, bundle):
    bundle.args("sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "zero", "x y", "", "*")
    assert rt.run_ok(cid, bundle).splitlines() == ["[x y]", "[]", "[*]"]


# -- uts ---------------------------------------------------------------------------

def test_hostname(rt, cid, bundle):
    bundle.config["hostname"] = "box-1"
    bundle.args("hostname")
    assert rt.run_ok(cid, bundle).strip() == "box-1"
    assert socket.gethostname() != "box-1"


@pytest.mark.xfail(is_runc(), strict=True,
                   reason="runc 1.1 ignores the 'domainname' field (support came in runc 1.2)")
def test_domainname(rt, cid, bundle):
    bundle.config["domainname"] = "example.test"
    bundle.args("cat", "/proc/sys/kernel/domainname")
    assert rt.run_ok(cid, bundle).strip() == "example.test"
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "example.test"


# -- capabilities / privileges -------------------------------------------------------

def test_capabilities_bounding_set_for_root(rt, cid, bundle):
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.process["capabilities"] = {k: list(caps) for k in
                                      ("bounding", "effective", "permitted")}
    st = _run_status(rt, cid, bundle)
    assert int(st["CapBnd"], 16) == _mask(*caps)
    assert int(st["CapEff"], 16) == _mask(*caps)
    assert int(st["CapPrm"], 16) == _mask(*caps)
    assert int(st["CapAmb"], 16) == 0


def test_capabilities_with_ambient_for_non_root_user(rt, cid, bundle):
    # A non-root process keeps, across execve, exactly its ambient set
    # (permitted and effective); inheritable and bounding are as configured.
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    st = _run_status(rt, cid, bundle)
    assert int(st["CapBnd"], 16) == _mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                                          "CAP_NET_RAW")
    assert int(st["CapInh"], 16) == _mask("CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert int(st["CapAmb"], 16) == _mask("CAP_NET_BIND_SERVICE")
    assert int(st["CapPrm"], 16) == _mask("CAP_NET_BIND_SERVICE")
    assert int(st["CapEff"], 16) == _mask("CAP_NET_BIND_SERVICE")


def test_non_root_user_without_ambient_has_no_capabilities(rt, cid, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {k: ["CAP_KILL"] for k in
                                      ("bounding", "effective", "permitted")}
    st = _run_status(rt, cid, bundle)
    assert int(st["CapEff"], 16) == 0
    assert int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == _mask("CAP_KILL")


def test_dropped_capability_is_enforced(rt, cid, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.process["capabilities"] = {k: ["CAP_KILL"] for k in
                                      ("bounding", "effective", "permitted")}
    bundle.sh("touch /f && chown 1000 /f && echo chowned || echo denied")
    assert rt.run_ok(cid, bundle).strip().splitlines()[-1] == "denied"


def test_no_capabilities_section_means_none(rt, cid, bundle):
    del bundle.process["capabilities"]
    st = _run_status(rt, cid, bundle)
    assert int(st["CapBnd"], 16) == 0
    assert int(st["CapEff"], 16) == 0


@pytest.mark.parametrize("nnp,expected", [(True, "1"), (False, "0")])
def test_no_new_privileges(rt, cid, bundle, nnp, expected):
    bundle.process["noNewPrivileges"] = nnp
    assert _run_status(rt, cid, bundle)["NoNewPrivs"] == expected


# -- rlimits / oom -------------------------------------------------------------------

def _limits(out):
    rows = {}
    for line in out.splitlines()[1:]:
        parts = line[26:].split()
        rows[line[:26].strip()] = parts[:2]
    return rows


def test_rlimit_nofile(rt, cid, bundle):
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    bundle.sh("ulimit -n; ulimit -Hn; cat /proc/self/limits")
    out = rt.run_ok(cid, bundle)
    lines = out.splitlines()
    assert lines[:2] == ["123", "456"]
    assert _limits("\n".join(lines[2:]))["Max open files"] == ["123", "456"]


def test_several_rlimits(rt, cid, bundle):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 1000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    bundle.args("cat", "/proc/self/limits")
    rows = _limits(rt.run_ok(cid, bundle))
    assert rows["Max open files"] == ["64", "64"]
    assert rows["Max processes"] == ["500", "1000"]
    assert rows["Max core file size"] == ["0", "0"]


def test_oom_score_adj(rt, cid, bundle):
    # Use a value >= the current one: raising needs no CAP_SYS_RESOURCE.
    bundle.process["oomScoreAdj"] = 500
    bundle.args("cat", "/proc/self/oom_score_adj")
    assert rt.run_ok(cid, bundle).strip() == "500"


# -- sysctl -------------------------------------------------------------------------

def _host(path):
    with open(path) as f:
        return f.read().strip()


def test_sysctl_in_own_network_namespace(rt, cid, bundle):
    before = _host("/proc/sys/net/ipv4/ip_forward")
    want = "0" if before == "1" else "1"
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": want}
    bundle.args("cat", "/proc/sys/net/ipv4/ip_forward")
    assert rt.run_ok(cid, bundle).strip() == want
    assert _host("/proc/sys/net/ipv4/ip_forward") == before


def test_sysctl_in_own_ipc_namespace(rt, cid, bundle):
    before = _host("/proc/sys/kernel/shm_rmid_forced")
    want = "0" if before == "1" else "1"
    bundle.linux["sysctl"] = {"kernel.shm_rmid_forced": want}
    bundle.args("cat", "/proc/sys/kernel/shm_rmid_forced")
    assert rt.run_ok(cid, bundle).strip() == want
    assert _host("/proc/sys/kernel/shm_rmid_forced") == before


def test_sysctl_for_shared_namespace_is_rejected(rt, cid, bundle):
    # net.* sysctls without a private network namespace would change the host.
    bundle.drop_namespace("network")
    before = _host("/proc/sys/net/ipv4/ip_forward")
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "0" if before == "1" else "1"}
    bundle.sh("echo must-not-run")
    bundle.write()
    rt.fail("run", "--bundle", str(bundle.path), cid)
    assert _host("/proc/sys/net/ipv4/ip_forward") == before


# -- root ------------------------------------------------------------------------------

def test_readonly_root_refuses_writes(rt, cid, bundle):
    bundle.config["root"]["readonly"] = True
    bundle.sh("touch /newfile 2>&1; echo rc=$?")
    out = rt.run_ok(cid, bundle)
    assert "rc=1" in out
    assert "Read-only file system" in out
    assert not (bundle.rootfs / "newfile").exists()


def test_writable_root_accepts_writes(rt, cid, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.sh("echo data > /newfile")
    rt.run_ok(cid, bundle)
    assert (bundle.rootfs / "newfile").read_text() == "data\n"


def test_readonly_root_leaves_tmpfs_mounts_writable(rt, cid, bundle):
    bundle.config["root"]["readonly"] = True
    bundle.sh("echo x > /dev/shm/f && cat /dev/shm/f")
    assert rt.run_ok(cid, bundle).strip() == "x"
