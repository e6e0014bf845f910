"""tests/vm (pure cgroup v2 behaviour) from a host that is not pure v2: one
batch inside a throw-away VM started by $ROOTLET_VM_RUNNER
(shared/tools/run-in-vm.sh; .ci/run sets it when the tool is there)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import cgroups

REPO = Path(__file__).resolve().parents[2]
VM_TIMEOUT = 900


def test_cgroup_v2_suite_in_a_vm():
    if cgroups.is_v2():
        pytest.skip("this host is pure cgroup v2: tests/vm run directly in this session")
    runner = os.environ.get("ROOTLET_VM_RUNNER", "")
    if not runner:
        pytest.skip(f"this host is cgroup {cgroups.host_mode()}, not pure v2, and $ROOTLET_VM_RUNNER is not "
                    f"set (point it at shared/tools/run-in-vm.sh to run tests/vm in a VM)")
    if not os.access(runner, os.X_OK):
        pytest.skip(f"$ROOTLET_VM_RUNNER={runner} is not an executable file")
    env = dict(os.environ, ROOTLET_TEST_TIMEOUT="120")
    command = [runner, "--timeout", str(VM_TIMEOUT), "-C", str(REPO), "--",
               sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/vm"]
    try:
        result = subprocess.run(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=VM_TIMEOUT + 120)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the VM did not finish in {VM_TIMEOUT + 120}s:\n{err.stdout or ''}{err.stderr or ''}")
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, (f"tests/vm failed in the VM (exit {result.returncode}):\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 5, f"too little ran in the VM: {summary!r}"
