"""features.md: the ``features`` document. Providing it is a MAY, so a runtime
without the command skips these checks; what it prints must hold."""

from __future__ import annotations

import json

from ..context import Context
from ..registry import Fail, Skip, check, expect
from ..runtime import version_tuple
from ..schema import load_schema, schema_path, validate


def _features(ctx: Context) -> dict:
    outcome = ctx.runtime.call("features")
    if not outcome.ok:
        raise Skip(f"no features document (optional): {outcome.first_error_line()}")
    try:
        return json.loads(outcome.stdout)
    except json.JSONDecodeError as error:
        raise Fail(f"features printed invalid JSON: {error}") from error


@check("features.md#features-structure", "MUST", "features output validates against the features JSON Schema",
       since="1.1.0")
def check_features_schema(ctx: Context) -> None:
    problems = validate(_features(ctx), load_schema("features"))
    expect(not problems, f"{len(problems)} violation(s) of {schema_path('features').name}: "
           f"{'; '.join(problems[:3])}")


@check("features.md#specification-version", "MUST",
       "ociVersionMax is not less than ociVersionMin", since="1.1.0")
def check_features_version_order(ctx: Context) -> None:
    features = _features(ctx)
    low, high = features.get("ociVersionMin", ""), features.get("ociVersionMax", "")
    expect(low and high and version_tuple(high) >= version_tuple(low), f"min {low!r}, max {high!r}")


@check("features.md#specification-version", "MUST",
       "config.json with ociVersion = ociVersionMin and = ociVersionMax is accepted",
       since="1.1.0")
def check_features_versions_accepted(ctx: Context) -> None:
    features = _features(ctx)
    refused = {}
    for key in ("ociVersionMin", "ociVersionMax"):
        bundle = ctx.bundle("true")
        bundle.config["ociVersion"] = features[key]
        container, outcome = ctx.create(bundle)
        if container is None:
            refused[features[key]] = outcome.first_error_line()
    expect(not refused, f"create refused: {refused}")
