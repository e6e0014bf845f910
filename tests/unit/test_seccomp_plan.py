"""runtime.seccomp's planner (pure: no filter is loaded here, except in a
forked child at the end) and the program cache."""

from __future__ import annotations

import copy
import errno
import os
import subprocess
import sys

import pytest

from runtime import _linux, _seccomp, log, seccomp
from runtime.errors import ConfigError
from runtime.spec import defaults, schema, seccomp_default

ALLOW, ERRNO, NOTIFY = _seccomp.ACT_ALLOW, _seccomp.ACT_ERRNO, _seccomp.ACT_NOTIFY
EQ, MASKED_EQ = _seccomp.OPERATORS["SCMP_CMP_EQ"], _seccomp.OPERATORS["SCMP_CMP_MASKED_EQ"]


def nr(name: str) -> int:
    return _seccomp.resolve(name)


def profile(*syscalls, **fields) -> dict:
    raw = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls)}
    raw.update(fields)
    return raw


def rules_of(raw: dict) -> list[tuple]:
    return seccomp.plan(raw).rules


# -- conversion ------------------------------------------------------------------

def test_each_name_is_a_rule_and_errno_defaults_to_eperm():
    rules = rules_of(profile({"names": ["mkdir", "chmod"], "action": "SCMP_ACT_ERRNO"}))
    assert rules == [(nr("mkdir"), ERRNO | errno.EPERM, ()), (nr("chmod"), ERRNO | errno.EPERM, ())]


def test_errno_ret_and_default_errno_ret():
    plan = seccomp.plan({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                         "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"},
                                      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                                      {"names": ["chmod"], "action": "SCMP_ACT_TRACE"}]})
    assert plan.default_action == ERRNO | 38
    assert [rule[1] for rule in plan.rules] == [ALLOW, ERRNO | 13, _seccomp.ACT_TRACE | errno.EPERM]


def test_kill_is_kill_thread():
    rules = rules_of(profile({"names": ["mkdir"], "action": "SCMP_ACT_KILL"},
                             {"names": ["chmod"], "action": "SCMP_ACT_KILL_PROCESS"}))
    assert [rule[1] for rule in rules] == [_seccomp.ACT_KILL_THREAD, _seccomp.ACT_KILL_PROCESS]


def test_args_on_different_indexes_must_all_match_in_one_rule():
    rules = rules_of(profile({"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}))
    assert rules == [(nr("socket"), ERRNO | 1, ((0, EQ, 2, 0), (1, MASKED_EQ, 0xF, 1)))]


def test_args_on_the_same_index_become_one_rule_each_as_in_runc():
    rules = rules_of(profile({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 0x20008, "op": "SCMP_CMP_EQ"}]}))
    assert rules == [(nr("personality"), ERRNO | 1, ((0, EQ, 8, 0),)),
                     (nr("personality"), ERRNO | 1, ((1, EQ, 3, 0),)),
                     (nr("personality"), ERRNO | 1, ((0, EQ, 0x20008, 0),))]


def test_rules_with_the_default_action_add_nothing():
    assert rules_of(profile({"names": ["read"], "action": "SCMP_ACT_ALLOW"})) == []


def test_unknown_syscalls_are_skipped_with_a_debug_line(tmp_path):
    path = tmp_path / "log"
    log.configure(str(path), "text", True)
    try:
        plan = seccomp.plan(profile({"names": ["mkdir", "no_such_call"], "action": "SCMP_ACT_ERRNO"}))
    finally:
        log.configure("", "text", False)
    assert plan.skipped == ["no_such_call"]
    assert [rule[0] for rule in plan.rules] == [nr("mkdir")]
    assert "level=debug" in path.read_text() and "no_such_call" in path.read_text()


def test_a_syscall_of_another_arch_resolves_to_a_pseudo_number():
    assert nr("socketcall") < -1  # libseccomp applies it on the arches that have it
    assert rules_of(profile({"names": ["socketcall"], "action": "SCMP_ACT_ERRNO"}))


def test_flags():
    assert seccomp.plan(profile()).flags == ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]  # runc's default
    assert seccomp.plan(profile(flags=[])).flags == []
    assert seccomp.plan(profile(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_LOG"])).flags == [
        "SECCOMP_FILTER_FLAG_LOG"]


def test_notify_needs_and_uses_the_listener():
    plan = seccomp.plan(profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/run/agent",
                                listenerMetadata="m"))
    assert plan.notify and plan.listener_path == "/run/agent" and plan.listener_metadata == "m"
    assert seccomp._load_flags(plan) & _seccomp.FLAG_NEW_LISTENER
    assert not seccomp.plan(profile({"names": ["nosuchcall"], "action": "SCMP_ACT_NOTIFY"},
                                    listenerPath="/x")).notify


def test_the_default_profile_is_valid_and_plans():
    config = defaults.default_config(rootless=False)
    schema.validate(config, "config")
    plan = seccomp.plan(config["linux"]["seccomp"])
    assert plan.default_action == ERRNO | errno.EPERM
    assert len(plan.rules) > 300 and not plan.skipped and not plan.notify
    clone = [rule for rule in plan.rules if rule[0] == nr("clone")]
    assert clone == [(nr("clone"), ALLOW, ((0, MASKED_EQ, seccomp_default.CLONE_NAMESPACE_FLAGS, 0),))]
    assert not [rule for rule in plan.rules if rule[0] in (nr("unshare"), nr("mount"), nr("setns"))]


# -- errors name the JSON path ------------------------------------------------------

def _syscalls(n: int = 4) -> list[dict]:
    return [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"} for _ in range(n)]


def _with(path: tuple, value) -> dict:
    raw = profile(*_syscalls())
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return raw


ARG = {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}


@pytest.mark.parametrize("raw, path", [
    (_with(("defaultAction",), "SCMP_ACT_BOGUS"), "linux.seccomp.defaultAction"),
    (_with(("syscalls", 3, "action"), "SCMP_ACT_BOGUS"), "linux.seccomp.syscalls[3].action"),
    (_with(("syscalls", 3, "args"), [dict(ARG, op="SCMP_CMP_BOGUS")]),
     "linux.seccomp.syscalls[3].args[0].op"),
    (_with(("syscalls", 3, "args"), [ARG, dict(ARG, index=6)]), "linux.seccomp.syscalls[3].args[1].index"),
    (_with(("syscalls", 3, "args"), [dict(ARG, value="12")]), "linux.seccomp.syscalls[3].args[0].value"),
    (_with(("syscalls", 3, "args"), [dict(ARG, value=-1)]), "linux.seccomp.syscalls[3].args[0].value"),
    (_with(("syscalls", 3, "args"), [dict(ARG, valueTwo=2**64)]),
     "linux.seccomp.syscalls[3].args[0].valueTwo"),
    (_with(("syscalls", 3, "args"), [ARG] * 7), "linux.seccomp.syscalls[3].args"),
    (_with(("syscalls", 1, "names"), []), "linux.seccomp.syscalls[1].names"),
    (_with(("syscalls", 1, "names"), ["mkdir", ""]), "linux.seccomp.syscalls[1].names[1]"),
    (_with(("syscalls", 2, "errnoRet"), 70000), "linux.seccomp.syscalls[2].errnoRet"),
    (_with(("flags",), ["SECCOMP_FILTER_FLAG_BOGUS"]), "linux.seccomp.flags[0]"),
    (_with(("architectures",), ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]), "linux.seccomp.architectures[1]"),
    (_with(("syscalls", 2, "action"), "SCMP_ACT_NOTIFY"), "linux.seccomp.syscalls[2].action"),
    (_with(("listenerMetadata",), "m"), "linux.seccomp.listenerMetadata"),
])
def test_bad_values_name_their_json_path(raw, path):
    with pytest.raises(ConfigError) as caught:
        seccomp.plan(raw)
    assert caught.value.path == path, caught.value
    assert "\n" not in str(caught.value)


def test_errno_on_an_action_without_one_is_refused_as_the_spec_says():
    with pytest.raises(ConfigError) as caught:
        seccomp.plan(profile({"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}))
    assert caught.value.path == "linux.seccomp.syscalls[0].errnoRet"
    with pytest.raises(ConfigError) as caught:
        seccomp.plan(profile(defaultErrnoRet=1))
    assert caught.value.path == "linux.seccomp.defaultErrnoRet"


@pytest.mark.parametrize("raw, path", [
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}, "linux.seccomp.defaultAction"),
    (profile({"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"),
     "linux.seccomp.syscalls[0].names"),
    (profile({"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"),
     "linux.seccomp.syscalls[0].names"),
])
def test_notify_where_the_runtime_would_wait_on_itself_is_refused(raw, path):
    with pytest.raises(ConfigError) as caught:
        seccomp.plan(raw)
    assert caught.value.path == path


@pytest.mark.parametrize("raw, path", [
    ({"defaultAction": "SCMP_ACT_KILL"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
     "linux.seccomp.defaultAction"),
    (profile({"names": ["mkdir", "execve"], "action": "SCMP_ACT_ERRNO"}), "linux.seccomp.syscalls[0]"),
])
def test_a_filter_that_refuses_execve_is_refused(raw, path):
    with pytest.raises(ConfigError, match="execve") as caught:
        seccomp.plan(raw)
    assert caught.value.path == path


def test_a_filter_with_conditions_on_execve_is_accepted():
    seccomp.plan({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["execve"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]}]})


# -- the program and its cache ------------------------------------------------------

def test_prepare_builds_the_program_once_and_caches_it(tmp_path):
    raw = seccomp_default.profile()
    first = seccomp.plan(raw)
    seccomp.prepare(first, str(tmp_path))
    assert first.program and len(first.program) % 8 == 0 and first.filter is None
    entries = os.listdir(tmp_path / seccomp.CACHE_DIR)
    assert len(entries) == 1
    assert os.stat(tmp_path / seccomp.CACHE_DIR).st_mode & 0o777 == 0o700
    again = seccomp.plan(raw)
    seccomp.prepare(again, str(tmp_path))
    assert again.program == first.program and again.filter is None
    other = seccomp.plan(copy.deepcopy(raw) | {"defaultErrnoRet": 13})
    seccomp.prepare(other, str(tmp_path))
    assert other.program != first.program
    assert len(os.listdir(tmp_path / seccomp.CACHE_DIR)) == 2


def test_a_tampered_or_loose_cache_entry_is_not_used(tmp_path):
    raw = profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})
    plan = seccomp.plan(raw)
    seccomp.prepare(plan, str(tmp_path))
    (entry,) = (tmp_path / seccomp.CACHE_DIR).iterdir()
    data = entry.read_bytes()
    entry.write_bytes(data[:-8] + b"\0" * 8)  # the program changed, the key did not: still trusted
    os.chmod(entry, 0o666)  # but a file others may write is not
    again = seccomp.plan(raw)
    seccomp.prepare(again, str(tmp_path))
    assert again.program == plan.program
    entry.write_bytes(b"garbage")
    os.chmod(entry, 0o600)
    third = seccomp.plan(raw)
    seccomp.prepare(third, str(tmp_path))
    assert third.program == plan.program


def test_the_program_is_what_libseccomp_generates():
    raw = seccomp_default.profile()
    plan = seccomp.plan(raw)
    seccomp.prepare(plan)
    assert plan.program == seccomp.compile(seccomp.plan(raw)).export_bpf()


def _in_child(check) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(check())
        except BaseException:  # noqa: BLE001
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_load_installs_the_filter(tmp_path):
    plan = seccomp.plan(profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77},
                                flags=["SECCOMP_FILTER_FLAG_LOG"]))
    seccomp.prepare(plan)

    def check() -> int:
        _linux.prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: loading then needs no privilege
        assert seccomp.load(plan) == -1
        try:
            os.mkdir(tmp_path / "refused")
        except OSError as err:
            return 0 if err.errno == 77 else 2
        return 1

    assert _in_child(check) == 0
    assert not (tmp_path / "refused").exists()


def test_features_tell_what_is_supported():
    document = seccomp.features()
    assert document["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in document["actions"] and "SCMP_CMP_MASKED_EQ" in document["operators"]
    assert "SCMP_ARCH_X86_64" in document["archs"] or "SCMP_ARCH_AARCH64" in document["archs"]
    assert set(document["supportedFlags"]) <= set(document["knownFlags"])
    schema.validate({"ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0",
                     "linux": {"seccomp": document}}, "features")


# -- what the hot path imports --------------------------------------------------------

HEAVY = {"re", "json", "enum", "collections", "dataclasses", "typing", "hashlib", "ctypes"}


@pytest.mark.parametrize("with_seccomp", [False, True])
def test_only_a_config_with_seccomp_imports_the_seccomp_modules_and_nothing_heavy(tmp_path, with_seccomp):
    (tmp_path / "rootfs").mkdir()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    drop = "" if with_seccomp else "del raw['linux']['seccomp']"
    code = "\n".join([
        f"import sys; sys.path.insert(0, {repo!r})",
        "from runtime.spec.defaults import default_config",
        "raw = default_config(rootless=False)",
        drop,
        "before = set(sys.modules)",
        "from runtime.spec.model import Config",
        f"config = Config(raw, {str(tmp_path)!r})",
        "if config.linux.seccomp is not None:",
        "    from runtime import seccomp; seccomp.prepare(config.linux.seccomp)",
        "print(' '.join(sorted(set(sys.modules) - before)))",
    ])
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                            check=True)
    modules = set(result.stdout.split())
    assert ("runtime.seccomp" in modules) == with_seccomp
    assert ("runtime._seccomp" in modules) == with_seccomp
    assert not modules & HEAVY, modules & HEAVY


def test_a_rule_libseccomp_refuses_names_its_entry():
    same_args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]
    plan = seccomp.plan(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": same_args},
                                {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": same_args}))
    with pytest.raises(ConfigError, match="libseccomp refuses the rule for mkdir") as caught:
        seccomp.prepare(plan)
    assert caught.value.path == "linux.seccomp.syscalls[1]"
