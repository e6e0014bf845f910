"""Cgroups for an unprivileged caller. Without a delegated cgroup v2 subtree
(always so on a v1 or hybrid host) the container runs without a cgroup, with
a warning, and asking for limits is an error naming the missing delegation.
tests/vm covers the delegated case."""

from __future__ import annotations

import pytest
from support import cgroups
from support.runtime import assert_nothing_left


@pytest.fixture
def undelegated():
    if cgroups.is_v2():
        pytest.skip("on a pure cgroup v2 host the caller's cgroup may be delegated")


def test_without_delegation_a_container_runs_without_a_cgroup(undelegated, urt, cid, ubundle):
    ubundle.sh("cat /proc/self/cgroup")
    r = urt.run(cid, ubundle)
    assert r.rc == 0, str(r)
    assert cid not in r.out
    assert "without a cgroup" in r.err
    assert_nothing_left(urt, cid)


def test_without_delegation_limits_are_an_error(undelegated, urt, cid, ubundle):
    ubundle.linux["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
    ubundle.args("true")
    ubundle.write()
    r = urt.fail("run", "--bundle", str(ubundle.path), cid)
    assert "linux.resources.memory" in r.err and "delegat" in r.err, r.err
    assert_nothing_left(urt, cid)


def test_without_delegation_cgroup_commands_explain(undelegated, urt, cid, ubundle):
    ubundle.sh("sleep 100")
    ubundle.write()
    urt.ok("run", "--detach", "--bundle", str(ubundle.path), cid)
    r = urt.fail("pause", cid)
    assert "no cgroup" in r.err, r.err
