"""Importing this package registers every check; ``ordered`` gives the report order."""

from ..registry import CHECKS, Check
from . import features, filesystem, hooks, lifecycle, linux, namespaces, process, resources, runtime_linux

# the report reads like the spec: operations first, then config.md, config-linux.md, the rest
REPORT_ORDER = [lifecycle, hooks, process, filesystem, namespaces, linux, runtime_linux, resources, features]


def ordered() -> list[Check]:
    rank = {module.__name__: index for index, module in enumerate(REPORT_ORDER)}
    return sorted(CHECKS, key=lambda c: rank.get(c.func.__module__, len(rank)))
