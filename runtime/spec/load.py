"""Read a bundle's config.json: parse, validate against specs/config-schema.json, convert."""

from __future__ import annotations

import os

from runtime import jsonio
from runtime.errors import ConfigError, RootletError
from runtime.spec import schema
from runtime.spec.model import Config


def load_bundle(bundle: str) -> Config:
    path = f"{bundle}/config.json"
    if not os.path.isdir(bundle):
        raise RootletError(f"bundle {bundle} is not a directory")
    try:
        raw = jsonio.load_file(path, what=path)
    except FileNotFoundError:
        raise RootletError(f"{path} does not exist") from None
    if not isinstance(raw, dict):
        raise ConfigError("", f"{path} must hold a JSON object")
    schema.validate(raw, "config")
    return Config(raw, bundle)
