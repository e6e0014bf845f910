"""Pure pieces of the runtime: no root, no kernel, exhaustively."""

from __future__ import annotations

import json
import math

import pytest

from runtime import cli, jsonio, mountopts, signals
from runtime.errors import ConfigError, RootletError
from runtime.spec import defaults
from runtime.spec.model import Config
from runtime.sys import constants as k


@pytest.mark.parametrize("value", [
    {}, [], {"a": [1, 2.5, "x", None, True, False]}, "é\u2028\n", -0.0, 10**30,
    {"nested": {"deep": [[], {}, [{"k": "v"}]]}},
])
def test_json_round_trips_like_the_json_module(value):
    assert jsonio.loads(jsonio.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(jsonio.dumps(value, indent=2)) == value


def test_json_indent_matches_the_json_module():
    value = {"a": [1, {"b": None}], "c": {}, "d": []}
    assert jsonio.dumps(value, indent=2) == json.dumps(value, indent=2)


@pytest.mark.parametrize("text", ["{", "[1,]", "{} x", "", "{'a': 1}"])
def test_json_errors_name_the_document(text):
    with pytest.raises(RootletError, match="config.json"):
        jsonio.loads(text, what="config.json")


def test_json_accepts_nan_like_the_json_module():
    assert math.isnan(jsonio.loads("NaN"))


@pytest.mark.parametrize("text, number", [
    ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("TERM", 15), ("SIGUSR1", 10), ("SIGRTMIN+2", 36),
])
def test_signal_names_and_numbers_are_accepted(text, number):
    assert signals.parse(text) == number


@pytest.mark.parametrize("text", ["FOO", "0", "65", "-9", "SIG", ""])
def test_unknown_signals_are_refused_naming_them(text):
    with pytest.raises(RootletError, match="unknown signal"):
        signals.parse(text)


def test_mount_options_split_into_flags_propagation_recursive_and_data():
    parsed = mountopts.parse(["rbind", "ro", "nosuid", "rprivate", "rnoexec", "rrw", "size=1m", "mode=755"])
    assert parsed.flags == k.MS_BIND | k.MS_REC | k.MS_RDONLY | k.MS_NOSUID
    assert parsed.propagation == [k.MS_PRIVATE | k.MS_REC]
    assert parsed.recursive_set == k.MOUNT_ATTR_NOEXEC
    assert parsed.recursive_clear == k.MOUNT_ATTR_RDONLY
    assert parsed.data == ["size=1m", "mode=755"]


def test_later_mount_options_override_earlier_ones():
    assert mountopts.parse(["ro", "rw"]).flags & k.MS_RDONLY == 0
    assert mountopts.parse(["nodev", "dev", "nodev"]).flags == k.MS_NODEV


def test_flags_parse_like_runc():
    flags, rest = cli.parse_flags(["--bundle", "/b", "-d", "--pid-file=/p", "id", "--not-a-flag"],
                                  cli.COMMANDS["run"][0], cli.COMMANDS["run"][1])
    assert flags == {"bundle": "/b", "detach": True, "pid-file": "/p"}
    assert rest == ["id", "--not-a-flag"]


def test_unknown_flags_are_refused():
    with pytest.raises(RootletError, match="--bogus"):
        cli.parse_flags(["--bogus", "x"], cli.COMMANDS["run"][0], {})


def _bundle(tmp_path, **changes):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    raw = defaults.default_config(rootless=False)
    for dotted, value in changes.items():
        target = raw
        *parents, last = dotted.split(".")
        for name in parents:
            target = target[name]
        target[last] = value
    return raw


def test_default_config_converts(tmp_path):
    config = Config(_bundle(tmp_path), str(tmp_path))
    assert config.rootfs == f"{tmp_path}/rootfs"
    assert config.linux.namespaces["pid"] == ""


@pytest.mark.parametrize("changes, path", [
    ({"process.args": []}, "process.args"),
    ({"process.cwd": "relative"}, "process.cwd"),
    ({"linux.seccomp": {"defaultAction": "SCMP_ACT_BOGUS"}}, "linux.seccomp.defaultAction"),
    ({"linux.namespaces": [{"type": "pid"}, {"type": "pid"}]}, "linux.namespaces[1].type"),
    ({"linux.namespaces": [{"type": "mount"}]}, "hostname"),
    ({"linux.namespaces": [{"type": "user"}, {"type": "uts"}]}, "linux.uidMappings"),
    ({"root.path": "missing"}, "root.path"),
])
def test_config_errors_name_the_json_path(tmp_path, changes, path):
    with pytest.raises(ConfigError) as caught:
        Config(_bundle(tmp_path, **changes), str(tmp_path))
    assert caught.value.path == path


def test_rootless_default_maps_the_caller_to_root():
    linux = defaults.default_config(rootless=True)["linux"]
    assert {"type": "network"} not in linux["namespaces"]
    assert linux["uidMappings"][0]["containerID"] == 0
