"""JSON Schema validation of the runtime's state and features documents.

The features schema is the repository's ``specs/features-schema.json`` when the
suite runs from a rootlet checkout; otherwise (the suite copied elsewhere) the
minimal one in ``conformance/schemas/``. The state schema is always our own,
written from runtime.md#state, so that no runtime's extensions leak into it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .registry import Skip

CONFORMANCE_DIR = Path(__file__).resolve().parent.parent
REPO_SPECS = CONFORMANCE_DIR.parent / "specs"


def schema_path(name: str) -> Path:
    if name == "features" and (REPO_SPECS / "features-schema.json").is_file():
        return REPO_SPECS / "features-schema.json"
    return CONFORMANCE_DIR / "schemas" / f"{name}.json"


def load_schema(name: str) -> dict:
    return json.loads(schema_path(name).read_text())


def validate(document: object, schema: dict) -> list[str]:
    """Every violation as ``path: message``; empty when the document is valid."""
    try:
        import jsonschema
    except ImportError as missing:
        raise Skip("the jsonschema module is not installed for this python") from missing
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    return [f"/{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: str(list(e.absolute_path)))]
