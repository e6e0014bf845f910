"""linux.seccomp in real containers: actions, errnos, argument filters, the
default profile, the notify agent, exec, and refused profiles.

The profiles are written here (or taken from rootlet's default profile,
plain data), so every test that does not name rootlet-specific behaviour
runs against runc too (ROOTLET=runc)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import struct
import threading

import pytest
from support.runtime import assert_nothing_left, runtime_name, wait_for

from runtime.spec import seccomp_default

from .scripts import WAIT_FOR_STOP

MKDIR = ["mkdir", "mkdirat"]
AF_INET = 2
PER_LINUX32 = 0x8


def allow_all_but(*syscalls: dict, **fields) -> dict:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls)}
    profile.update(fields)
    return profile


def run_script(rt, cid, bundle, script: str, profile: dict | None) -> tuple[int, str, str]:
    if profile is not None:
        bundle.linux["seccomp"] = profile
    bundle.sh(script)
    r = rt.run(cid, bundle)
    return r.rc, r.out, r.err


# -- actions -----------------------------------------------------------------------

def test_a_blocked_syscall_fails_with_eperm_while_others_work(rt, cid, bundle):
    rc, out, err = run_script(rt, cid, bundle,
                              "mkdir /dev/shm/d; echo mkdir=$?; touch /dev/shm/f && echo touch=ok",
                              allow_all_but({"names": MKDIR, "action": "SCMP_ACT_ERRNO"}))
    assert rc == 0, err
    assert "mkdir=1" in out and "touch=ok" in out
    assert "Operation not permitted" in err


def test_errno_ret_is_the_errno_the_call_sees(rt, cid, bundle):
    rc, out, err = run_script(rt, cid, bundle, "chmod 600 /dev/shm; echo chmod=$?",
                              allow_all_but({"names": ["chmod", "fchmodat", "fchmodat2"],
                                             "action": "SCMP_ACT_ERRNO", "errnoRet": 13}))
    assert "chmod=1" in out, (out, err)
    assert "Permission denied" in err


def test_default_errno_ret(rt, cid, bundle):
    profile = seccomp_default.profile()
    profile["defaultErrnoRet"] = 95  # EOPNOTSUPP for whatever the profile does not list
    rc, out, err = run_script(rt, cid, bundle, "echo hello | wc -c; unshare -m true; echo unshare=$?",
                              profile)
    assert rc == 0, err
    assert out.split() == ["6", "unshare=1"], (out, err)
    assert "Operation not supported" in err, err


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD"])
def test_kill_actions_end_the_process_with_sigsys(rt, cid, bundle, action):
    bundle.linux["seccomp"] = allow_all_but({"names": MKDIR, "action": action})
    bundle.args("mkdir", "/dev/shm/d")
    r = rt.run(cid, bundle)
    assert r.rc == 128 + 31, str(r)  # SIGSYS


def test_log_lets_the_call_through(rt, cid, bundle):
    rc, out, err = run_script(rt, cid, bundle, "mkdir /dev/shm/d && test -d /dev/shm/d && echo made",
                              allow_all_but({"names": MKDIR, "action": "SCMP_ACT_LOG"}))
    assert rc == 0 and out.strip() == "made", err


def test_the_filter_is_on_the_users_process(rt, cid, bundle):
    rc, out, err = run_script(rt, cid, bundle, "grep -E '^Seccomp:' /proc/self/status",
                              allow_all_but({"names": MKDIR, "action": "SCMP_ACT_ERRNO"}))
    assert out.split() == ["Seccomp:", "2"], (out, err)


def test_without_no_new_privileges_the_filter_survives_the_switch_of_user(rt, cid, bundle):
    # Loaded while the process may still (CAP_SYS_ADMIN), before it becomes uid 1000.
    bundle.process["noNewPrivileges"] = False
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    rc, out, err = run_script(rt, cid, bundle, "id -u; mkdir /dev/shm/d; echo mkdir=$?",
                              allow_all_but({"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 95}))
    assert out.split() == ["1000", "mkdir=1"], (out, err)
    assert "Operation not supported" in err


@pytest.mark.rootlet_only  # runc 1.1 refuses every flag ("not yet supported")
def test_filter_flags(rt, cid, bundle):
    flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    rc, out, err = run_script(rt, cid, bundle, "mkdir /dev/shm/d; echo mkdir=$?",
                              allow_all_but({"names": MKDIR, "action": "SCMP_ACT_ERRNO"}, flags=flags))
    assert rc == 0 and out.strip() == "mkdir=1", (out, err)


# -- argument filters --------------------------------------------------------------

def test_one_persona_of_personality_is_refused(rt, cid, bundle):
    rc, out, err = run_script(
        rt, cid, bundle, "linux32 true; echo linux32=$?; linux64 true; echo linux64=$?",
        allow_all_but({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                       "args": [{"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"}]}))
    assert out.split() == ["linux32=1", "linux64=0"], (out, err)


def test_inet_sockets_are_refused_while_unix_and_netlink_ones_work(rt, cid, bundle):
    script = (
        "nc 127.0.0.1 9 </dev/null; echo inet=$?; "
        "ip link >/dev/null && echo netlink=ok; "
        # AF_UNIX: syslogd binds /dev/log, logger sends to it
        "syslogd -n -O /dev/shm/log & "
        "for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.05; done; logger via-unix; "
        "for i in $(seq 50); do grep -q via-unix /dev/shm/log 2>/dev/null && break; sleep 0.05; done; "
        "grep -q via-unix /dev/shm/log && echo unix=ok; kill %1"
    )
    rc, out, err = run_script(rt, cid, bundle, script, allow_all_but(
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": AF_INET, "op": "SCMP_CMP_EQ"}]}))
    assert out.split() == ["inet=1", "netlink=ok", "unix=ok"], (out, err)
    assert "socket: Operation not permitted" in err


def test_two_conditions_on_one_argument_match_either(rt, cid, bundle):
    # runc's reading (and ours): each comparison of the same argument is a rule of its own.
    rc, out, err = run_script(
        rt, cid, bundle, "linux32 true; echo linux32=$?; linux64 true; echo linux64=$?",
        allow_all_but({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}))
    assert out.split() == ["linux32=1", "linux64=1"], (out, err)


# -- the default profile -----------------------------------------------------------

def _with_sys_admin(bundle) -> None:
    # With CAP_SYS_ADMIN only the filter can stand between the process and mount/unshare.
    for name in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][name].append("CAP_SYS_ADMIN")


BUSYBOX_WORK = ("echo hello | sed s/h/H/; ls / | grep -cx bin; cat /proc/self/status | grep -c Seccomp; "
                "seq 3 | sort -r | tr '\\n' ' '; echo; date +%Y >/dev/null && echo date=ok; "
                "sleep 0.01 && echo sleep=ok; (echo sub) | cat")


def test_the_default_profile_runs_busybox_and_blocks_unshare_and_mount(rt, cid, bundle):
    _with_sys_admin(bundle)
    rc, out, err = run_script(rt, cid, bundle, BUSYBOX_WORK + "; unshare -m true; echo unshare=$?; "
                              "mount -t tmpfs t /mnt; echo mount=$?", seccomp_default.profile())
    assert rc == 0, err
    assert out.split("\n")[:7] == ["Hello", "1", "2", "3 2 1 ", "date=ok", "sleep=ok", "sub"], (out, err)
    assert "unshare=1" in out and "mount=1" in out, (out, err)


def test_without_the_profile_the_same_mount_works(rt, cid, bundle):
    _with_sys_admin(bundle)
    rc, out, err = run_script(rt, cid, bundle, "mount -t tmpfs t /mnt; echo mount=$?", None)
    assert out.strip() == "mount=0", err


@pytest.mark.rootlet_only
def test_rootlet_spec_writes_the_default_profile_and_it_works(rt, cid, make_bundle):
    bundle = make_bundle()
    (bundle.path / "config.json").unlink(missing_ok=True)
    rt.ok("spec", "--bundle", str(bundle.path))
    config = json.loads((bundle.path / "config.json").read_text())
    profile = config["linux"]["seccomp"]
    assert (profile["defaultAction"], profile["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert len(profile["syscalls"][0]["names"]) >= 300
    assert {entry["names"][0] for entry in profile["syscalls"][1:]} == {"clone", "clone3", "personality"}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", BUSYBOX_WORK + "; unshare -U true; echo unshare=$?"]
    bundle.write(config)
    r = rt("run", "--bundle", str(bundle.path), cid)
    assert r.rc == 0, str(r)
    assert r.out.startswith("Hello\n") and "unshare=1" in r.out, str(r)


@pytest.mark.rootlet_only
def test_features_report_seccomp(rt):
    document = rt.ok("features").json()["linux"]["seccomp"]
    assert document["enabled"] is True
    assert {"SCMP_ACT_NOTIFY", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG"} <= set(document["actions"])
    assert "SECCOMP_FILTER_FLAG_SPEC_ALLOW" in document["supportedFlags"]


# -- the notify agent --------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes


class Agent:
    """A seccomp agent: takes each container process state with its notify fd
    on a unix socket, then answers every notification with success (0)
    without doing anything, so the container sees the agent's answer."""

    def __init__(self, path):
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        self.states: list[dict] = []
        self.answered: list[tuple[int, int]] = []  # (pid, syscall nr)
        self.fds: list[int] = []
        self.closed: list[bool] = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            ready, _, _ = select.select([self.server, *self.fds], [], [], 0.05)
            for item in ready:
                if item is self.server:
                    self._accept()
                else:
                    self._answer(item)

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self.fds.append(struct.unpack("i", payload[:4])[0])
            while True:  # the state may come in several sendmsg() calls
                try:
                    self.states.append(json.loads(data))
                    break
                except ValueError:
                    more = conn.recv(65536)
                    if not more:
                        raise
                    data += more
            # The spec wants the connection closed after one state (runc 1.1 leaves it open).
            readable, _, _ = select.select([conn], [], [], 1.0)
            self.closed.append(bool(readable) and conn.recv(1) == b"")

    def _answer(self, fd: int) -> None:
        request = bytearray(80)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, request, True)
        except OSError:  # the filter's processes are gone
            self.fds.remove(fd)
            os.close(fd)
            return
        notification_id, pid, _flags, nr = struct.unpack_from("=QIIi", request)
        response = bytearray(struct.pack("=QqiI", notification_id, 0, 0, 0))  # id, val, error, flags
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, response, True)
        self.answered.append((pid, nr))

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.server.close()
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def agent(testdir):
    running = Agent(testdir / "agent.sock")
    yield running
    running.close()


def notify_profile(agent, metadata="opaque-meta") -> dict:
    return allow_all_but({"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}, listenerPath=agent.path,
                         listenerMetadata=metadata)


def test_the_agent_gets_the_fd_and_its_answer_is_what_the_process_sees(rt, cid, bundle, agent):
    bundle.config["annotations"] = {"org.example": "yes"}
    rc, out, err = run_script(rt, cid, bundle,
                              "mkdir /dev/shm/d && echo mkdir=ok; test -d /dev/shm/d || echo absent",
                              notify_profile(agent))
    assert rc == 0, err
    assert out.split() == ["mkdir=ok", "absent"], (out, err)  # the agent said yes and did nothing
    (state,) = agent.states
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "opaque-meta"
    assert state["ociVersion"] and state["pid"] == state["state"]["pid"]
    inner = state["state"]
    during_create = "creating" if runtime_name() == "runc" else "created"  # as create hooks get it
    assert (inner["id"], inner["status"], inner["bundle"]) == (cid, during_create, str(bundle.path))
    assert inner["annotations"].get("org.example") == "yes"
    assert agent.answered
    if runtime_name() == "rootlet":
        assert agent.closed == [True]


@pytest.mark.rootlet_only  # runc 1.1 does not know the flag
def test_an_agent_with_wait_killable_recv(rt, cid, bundle, agent):
    profile = notify_profile(agent)
    profile["flags"] = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"]
    rc, out, err = run_script(rt, cid, bundle, "mkdir /dev/shm/d && echo mkdir=ok", profile)
    assert rc == 0 and out.strip() == "mkdir=ok", err
    assert agent.answered


def test_the_fd_is_with_the_agent_when_create_returns(rt, cid, bundle, testdir):
    # A bare listening socket, read only after create: the state and the fd
    # must already be queued on it.
    path = testdir / "quiet-agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.setblocking(False)
    bundle.linux["seccomp"] = allow_all_but({"names": MKDIR, "action": "SCMP_ACT_NOTIFY"},
                                            listenerPath=str(path))
    bundle.sh(WAIT_FOR_STOP)
    try:
        rt.create(cid, bundle)
        conn, _ = server.accept()
        with conn:
            data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4), socket.MSG_DONTWAIT)
    finally:
        server.close()
    fds = [struct.unpack("i", payload[:4])[0] for level, kind, payload in ancillary
           if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS]
    assert len(fds) == 1
    os.close(fds[0])
    assert json.loads(data)["pid"] == rt.state(cid)["pid"]


def test_exec_gets_the_containers_notify_filter(rt, cid, bundle, agent):
    out = bundle.shared_dir()
    bundle.linux["seccomp"] = notify_profile(agent)
    bundle.sh(WAIT_FOR_STOP)
    rt.create(cid, bundle)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    r = rt.ok("exec", cid, "sh", "-c", "mkdir /dev/shm/e && echo mkdir=ok; test -d /dev/shm/e || echo absent")
    assert r.out.split() == ["mkdir=ok", "absent"], str(r)
    assert len(agent.states) == 2
    execd = agent.states[1]
    assert execd["state"]["status"] == "running" and execd["state"]["id"] == cid
    assert execd["state"]["pid"] == rt.state(cid)["pid"] != execd["pid"]
    (out / "stop").touch()


def test_create_fails_cleanly_when_nobody_listens(rt, cid, bundle, testdir):
    bundle.linux["seccomp"] = allow_all_but({"names": MKDIR, "action": "SCMP_ACT_NOTIFY"},
                                            listenerPath=str(testdir / "nobody.sock"))
    bundle.sh("sleep 100")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert r.rc == 1
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


# -- exec --------------------------------------------------------------------------

def test_exec_gets_the_containers_filter(rt, cid, bundle):
    out = bundle.shared_dir()
    bundle.linux["seccomp"] = allow_all_but({"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 95})
    bundle.sh(WAIT_FOR_STOP)
    rt.create(cid, bundle)
    rt.ok("start", cid)
    wait_for(lambda: (out / "started").exists(), what="container to start")
    r = rt("exec", cid, "mkdir", "/dev/shm/e")
    assert r.rc == 1 and "Operation not supported" in r.err, str(r)
    r = rt.ok("exec", cid, "sh", "-c", "touch /dev/shm/f && grep -E '^Seccomp:' /proc/self/status")
    assert r.out.split() == ["Seccomp:", "2"], str(r)
    r = rt("exec", "--no-new-privs", cid, "mkdir", "/dev/shm/e")
    assert r.rc == 1 and "Operation not supported" in r.err, str(r)
    (out / "stop").touch()


# -- refused profiles --------------------------------------------------------------

ARG = {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}
BAD = [
    ("unknown-action", {"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}, "linux.seccomp.syscalls[3].action"),
    ("unknown-op", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [dict(ARG, op="SCMP_CMP_BOGUS")]},
     "linux.seccomp.syscalls[3].args[0].op"),
    ("index-over-5", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [dict(ARG, index=6)]},
     "linux.seccomp.syscalls[3].args[0].index"),
    ("value-not-a-number", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [dict(ARG, value="one")]},
     "linux.seccomp.syscalls[3].args[0].value"),
    ("notify-without-listener", {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
     "linux.seccomp.syscalls[3].action"),
]


def _bad_profile(entry: dict) -> dict:
    fine = {"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}
    return allow_all_but(fine, fine, fine, entry)


def _check_refused(rt, cid, bundle, path: str | None) -> None:
    bundle.sh("sleep 100")
    bundle.write()
    r = rt.fail("create", "--bundle", str(bundle.path), cid)
    assert r.rc == 1, str(r)
    if path is not None:
        assert len(r.err.strip().splitlines()) == 1, str(r)
        assert path in r.err, str(r)
    assert rt.ids() == []
    assert_nothing_left(rt, cid, bundle.token, bundle.path)


@pytest.mark.parametrize("name, entry, path", BAD, ids=[case[0] for case in BAD])
def test_a_bad_profile_is_refused_and_leaves_nothing(rt, cid, bundle, name, entry, path):
    bundle.linux["seccomp"] = _bad_profile(entry)
    _check_refused(rt, cid, bundle, None)


@pytest.mark.rootlet_only
@pytest.mark.parametrize("name, entry, path", BAD, ids=[case[0] for case in BAD])
def test_a_bad_profile_is_reported_in_one_line_with_its_json_path(rt, cid, bundle, name, entry, path):
    bundle.linux["seccomp"] = _bad_profile(entry)
    _check_refused(rt, cid, bundle, path)


def test_an_unknown_flag_is_refused(rt, cid, bundle):
    bundle.linux["seccomp"] = allow_all_but(flags=["SECCOMP_FILTER_FLAG_BOGUS"])
    _check_refused(rt, cid, bundle, None)


@pytest.mark.rootlet_only
def test_an_unknown_flag_is_reported_with_its_json_path(rt, cid, bundle):
    bundle.linux["seccomp"] = allow_all_but(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"])
    _check_refused(rt, cid, bundle, "linux.seccomp.flags[1]")


@pytest.mark.rootlet_only
def test_a_profile_that_refuses_execve_is_refused_at_create(rt, cid, bundle):
    bundle.linux["seccomp"] = allow_all_but({"names": ["execve"], "action": "SCMP_ACT_ERRNO"})
    _check_refused(rt, cid, bundle, "linux.seccomp.syscalls[0]")


def test_unknown_syscall_names_are_skipped(rt, cid, bundle):
    rc, out, err = run_script(rt, cid, bundle, "mkdir /dev/shm/d; echo mkdir=$?",
                              allow_all_but({"names": ["no_such_syscall", *MKDIR],
                                             "action": "SCMP_ACT_ERRNO"}))
    assert rc == 0 and out.strip() == "mkdir=1", (out, err)
