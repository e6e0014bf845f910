"""`spec` and `--version`, and the generated config actually running."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest


def _spec(rt, directory, *flags):
    rt.ok("spec", *flags, "--bundle", str(directory))
    return json.loads((directory / "config.json").read_text())


def test_spec_writes_runc_style_defaults(rt, testdir):
    cfg = _spec(rt, testdir)
    assert cfg["ociVersion"]
    assert cfg["process"]["terminal"] is True
    assert cfg["process"]["args"] == ["sh"]
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0}
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert [ns["type"] for ns in cfg["linux"]["namespaces"]] == [
        "pid", "network", "ipc", "uts", "mount"]
    dests = [m["destination"] for m in cfg["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert d in dests
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024} in cfg["process"]["rlimits"]
    assert cfg["process"]["noNewPrivileges"] is True


def test_spec_rootless_adds_user_namespace(rt, testdir):
    cfg = _spec(rt, testdir, "--rootless")
    types = [ns["type"] for ns in cfg["linux"]["namespaces"]]
    assert "user" in types and "network" not in types
    assert cfg["linux"]["uidMappings"][0]["containerID"] == 0
    assert cfg["linux"]["uidMappings"][0]["size"] == 1
    assert "resources" not in cfg["linux"]


def test_spec_refuses_to_overwrite(rt, testdir):
    (testdir / "config.json").write_text("{}")
    rt.fail("spec", "--bundle", str(testdir))
    assert (testdir / "config.json").read_text() == "{}"


def test_spec_into_missing_directory_fails(rt, testdir):
    rt.fail("spec", "--bundle", str(testdir / "missing"))


def test_spec_output_runs_once_terminal_is_off(rt, cid, bundle):
    cfg = _spec(rt, bundle.path)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo spec-ok", bundle.token]
    bundle.config = cfg
    assert rt.run_ok(cid, bundle).strip() == "spec-ok"


@pytest.mark.rootlet_only
def test_version_names_rootlet(rt):
    out = rt.ok("--version").out
    assert out.splitlines()[0].startswith("rootlet version ")
    assert any(line.startswith("spec: 1.") for line in out.splitlines())


@pytest.mark.rootlet_only
def test_spec_matches_runc_spec_except_hostname_and_seccomp(rt, testdir):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed to compare with")
    mine = _spec(rt, testdir)
    ref_dir = testdir / "runc-spec"
    ref_dir.mkdir()
    subprocess.run([runc, "spec", "--bundle", str(ref_dir)], check=True)
    ref = json.loads((ref_dir / "config.json").read_text())
    for cfg in (mine, ref):
        cfg.pop("hostname", None)
        cfg.pop("ociVersion", None)
    assert mine["linux"].pop("seccomp")["defaultAction"] == "SCMP_ACT_ERRNO"  # runc writes no profile
    assert mine == ref
