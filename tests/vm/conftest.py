"""tests/vm: what only a pure cgroup v2 host can show (io.max, cpuset,
hugetlb, the eBPF device filter, a delegated rootless subtree) plus the
cgroup behaviours of tests/integration/test_cgroups.py again under v2.

They run where the host is pure cgroup v2, and are skipped elsewhere; on a
v1 or hybrid host tests/integration/test_cgroups_vm.py boots a VM
($ROOTLET_VM_RUNNER) and runs this directory inside it in one batch.
"""

from __future__ import annotations

import os

import pytest
from support import cgroups


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    if cgroups.is_v2() and os.geteuid() == 0:
        return
    why = (f"needs a pure cgroup v2 host as root (this host: {cgroups.host_mode()}, euid {os.geteuid()}); "
           f"tests/integration/test_cgroups_vm.py runs it in a VM")
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.skip(reason=why))
