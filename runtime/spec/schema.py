"""Check config.json (and the state and features documents) against our schemas.

`jsonschema` takes tens of milliseconds to import, more than a whole `create`,
so this module interprets the JSON Schema keywords that specs/*.json use and
nothing else: an unknown keyword is refused when a schema is compiled, which
keeps the schemas and this interpreter in step. Each schema is compiled once
into closures; a valid document then costs one walk that builds no errors.

Error reports follow `jsonschema`: the same wording, and the error its
`best_match` would pick, so a user sees the same line whichever tool they ran.
Only `runtime.jsonio` and `runtime.errors` are imported (no `re`, no `json`).
"""

from __future__ import annotations

from runtime import jsonio
from runtime.errors import ConfigError, RootletError

_WEAK = frozenset(("anyOf", "oneOf"))
_ANNOTATIONS = frozenset(("$schema", "$id", "$comment", "$defs", "title", "description", "then", "else"))
_CLASSES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_compiled: dict = {}


class _Error:
    """One failed keyword; `rpath` is the instance path, innermost part first."""

    __slots__ = ("message", "keyword", "instance", "types", "context", "rpath")

    def __init__(self, message: str, keyword: str, instance, types: tuple, context=None):
        self.message = message
        self.keyword = keyword
        self.instance = instance
        self.types = types
        self.context = context
        self.rpath: list = []


def schema_path(name: str) -> str:
    """The schema file for `name`: `runtime/specs/<name>-schema.json`.

    In a checkout `runtime/specs` is a symlink to the top-level `specs/`; an
    installed package carries the files there as package data.
    """
    package = __file__.rpartition("/")[0].rpartition("/")[0]
    return f"{package}/specs/{name}-schema.json"


def validate(document, schema_name: str = "config", definition: str = "", prefix: str = "") -> None:
    """Raise ConfigError for the most relevant violation of the schema, if any.

    With `definition`, check against one of the schema's `$defs` (`exec
    --process` takes a bare process object); `prefix` starts the JSON path."""
    key = f"{schema_name}#{definition}"
    check = _compiled.get(key) or _load(schema_name, definition)
    errors = check(document)
    if errors:
        path, message = _best_match(errors)
        if prefix:
            path = [prefix, *path]
        raise ConfigError(_format_path(path) or f"{schema_name}.json", message)


def _load(name: str, definition: str):
    path = schema_path(name)
    try:
        schema = jsonio.load_file(path)
    except OSError as err:
        raise RootletError(f"cannot read schema {path}: {err.strerror}") from None
    target = schema["$defs"][definition] if definition else schema
    check = _compiled[f"{name}#{definition}"] = _Compiler(schema).compile(target)
    return check


class _Compiler:
    """Turns one schema document into a check(instance) -> list of _Error or None."""

    def __init__(self, root: dict):
        self.root = root
        self.refs: dict = {}

    def compile(self, schema: dict):
        types = schema.get("type", ())
        types = (types,) if type(types) is str else tuple(types)
        checks = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            build = _BUILDERS.get(keyword)
            if build is None:
                raise ValueError(f"schema keyword {keyword!r} is not supported by runtime.spec.schema")
            checks.append(build(self, value, schema, types))
        if len(checks) == 1:
            return checks[0]
        return _all_of(checks) if checks else _accept

    def resolve(self, ref: str):
        check = self.refs.get(ref)
        if check is None:
            if not ref.startswith("#/"):
                raise ValueError(f"only local references are supported, not {ref!r}")
            target = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            check = self.refs[ref] = self.compile(target)
        return check


def _accept(instance):
    return None


def _all_of(checks: list):
    def check(instance):
        errors = None
        for each in checks:
            found = each(instance)
            if found:
                errors = found if errors is None else errors + found
        return errors

    return check


def _has_type(instance, name: str) -> bool:
    kind = type(instance)
    if name == "integer":
        return kind is int or (kind is float and instance.is_integer())
    if name == "number":
        return kind is int or kind is float
    return kind is _CLASSES[name]


def _type_test(types: tuple):
    """A predicate for `types`, without a loop for the common single type."""
    if len(types) != 1:
        return lambda instance: any(_has_type(instance, name) for name in types)
    name = types[0]
    cls = _CLASSES.get(name)
    if cls is None:
        return lambda instance: _has_type(instance, name)
    return lambda instance: type(instance) is cls


def _type(compiler, value, schema, types):
    test = _type_test(types)
    names = ", ".join(repr(name) for name in types)

    def check(instance):
        if test(instance):
            return None
        return [_Error(f"{instance!r} is not of type {names}", "type", instance, types)]

    return check


def _prefix(found: list, part) -> list:
    for error in found:
        error.rpath.append(part)
    return found


def _properties(compiler, value, schema, types):
    """A property's schema is compiled when a document first holds it: a
    config touches a small part of the spec's schema, and compiling all of
    it would cost each `create` a few ms."""
    subs = {}

    def check(instance):
        if type(instance) is not dict:
            return None
        errors = None
        for name, item in instance.items():
            sub = subs.get(name)
            if sub is None:
                if name not in value:
                    continue
                sub = subs[name] = compiler.compile(value[name])
            found = sub(item)
            if found:
                errors = _prefix(found, name) if errors is None else errors + _prefix(found, name)
        return errors

    return check


def _additional_properties(compiler, value, schema, types):
    sub = compiler.compile(value)
    known = frozenset(schema.get("properties", ()))

    def check(instance):
        if type(instance) is not dict:
            return None
        errors = None
        for name, item in instance.items():
            found = sub(item) if name not in known else None
            if found:
                errors = _prefix(found, name) if errors is None else errors + _prefix(found, name)
        return errors

    return check


def _property_names(compiler, value, schema, types):
    sub = compiler.compile(value)

    def check(instance):
        if type(instance) is not dict:
            return None
        errors = None
        for name in instance:
            found = sub(name)
            if found:
                errors = found if errors is None else errors + found
        return errors

    return check


def _items(compiler, value, schema, types):
    sub = compiler.compile(value)

    def check(instance):
        if type(instance) is not list:
            return None
        errors = None
        for index, item in enumerate(instance):
            found = sub(item)
            if found:
                errors = _prefix(found, index) if errors is None else errors + _prefix(found, index)
        return errors

    return check


def _required(compiler, value, schema, types):
    def check(instance):
        if type(instance) is not dict:
            return None
        for name in value:
            if name not in instance:
                return [
                    _Error(f"{missing!r} is a required property", "required", instance, types)
                    for missing in value
                    if missing not in instance
                ]
        return None

    return check


def _dependent_required(compiler, value, schema, types):
    def check(instance):
        if type(instance) is not dict:
            return None
        errors = None
        for name, needed in value.items():
            if name in instance:
                for each in needed:
                    if each not in instance:
                        message = f"{each!r} is a dependency of {name!r}"
                        error = _Error(message, "dependentRequired", instance, types)
                        errors = [error] if errors is None else errors + [error]
        return errors

    return check


def _strings(keyword: str, value) -> tuple:
    """enum and const are only compiled for strings: plain == is then JSON equality."""
    values = tuple(value) if keyword == "enum" else (value,)
    if not all(type(each) is str for each in values):
        raise ValueError(f"{keyword} is only supported with string values: {value!r}")
    return values


def _enum(compiler, value, schema, types):
    allowed = frozenset(_strings("enum", value))

    def check(instance):
        if type(instance) is str and instance in allowed:
            return None
        return [_Error(f"{instance!r} is not one of {value!r}", "enum", instance, types)]

    return check


def _const(compiler, value, schema, types):
    _strings("const", value)

    def check(instance):
        if instance == value:
            return None
        return [_Error(f"{value!r} was expected", "const", instance, types)]

    return check


def _minimum(compiler, value, schema, types):
    def check(instance):
        kind = type(instance)
        if (kind is int or kind is float) and instance < value:
            message = f"{instance!r} is less than the minimum of {value!r}"
            return [_Error(message, "minimum", instance, types)]
        return None

    return check


def _maximum(compiler, value, schema, types):
    def check(instance):
        kind = type(instance)
        if (kind is int or kind is float) and instance > value:
            message = f"{instance!r} is greater than the maximum of {value!r}"
            return [_Error(message, "maximum", instance, types)]
        return None

    return check


def _too_short(keyword: str, cls: type, value: int, types: tuple):
    """minItems and minLength share jsonschema's wording, which changes for 1."""
    words = "should be non-empty" if value == 1 else "is too short"

    def check(instance):
        if type(instance) is cls and len(instance) < value:
            return [_Error(f"{instance!r} {words}", keyword, instance, types)]
        return None

    return check


def _min_items(compiler, value, schema, types):
    return _too_short("minItems", list, value, types)


def _min_length(compiler, value, schema, types):
    return _too_short("minLength", str, value, types)


def _ref(compiler, value, schema, types):
    return compiler.resolve(value)


def _any_of(compiler, value, schema, types):
    subs = [compiler.compile(sub) for sub in value]

    def check(instance):
        context = []
        for sub in subs:
            found = sub(instance)
            if not found:
                return None
            context.extend(found)
        message = f"{instance!r} is not valid under any of the given schemas"
        return [_Error(message, "anyOf", instance, types, context)]

    return check


def _if(compiler, value, schema, types):
    condition = compiler.compile(value)
    then = compiler.compile(schema["then"]) if "then" in schema else None
    otherwise = compiler.compile(schema["else"]) if "else" in schema else None

    def check(instance):
        branch = otherwise if condition(instance) else then
        return branch(instance) if branch is not None else None

    return check


_BUILDERS = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "items": _items,
    "required": _required,
    "dependentRequired": _dependent_required,
    "enum": _enum,
    "const": _const,
    "minimum": _minimum,
    "maximum": _maximum,
    "minItems": _min_items,
    "minLength": _min_length,
    "$ref": _ref,
    "anyOf": _any_of,
    "if": _if,
}


def _ranked(errors: list) -> list:
    """(relevance, error, path) for each error, path read outside-in."""
    ranked = []
    for error in errors:
        path = tuple(reversed(error.rpath))
        ranked.append((_relevance(error, path), error, path))
    return ranked


def _relevance(error: _Error, path: tuple) -> tuple:
    """jsonschema's `relevance` key: shallow first, then weak keywords last."""
    matches_type = any(_has_type(error.instance, name) for name in error.types)
    return (-len(path), path, error.keyword not in _WEAK, False, not matches_type)


def _best_match(errors: list) -> tuple:
    """The (path, message) that jsonschema's `best_match` picks among `errors`.

    The shallowest error wins, except that an anyOf failure is explained by its
    deepest sub-error, unless two sub-errors tie.
    """
    _, best, path = max(_ranked(errors), key=_first)
    while best.context:
        inner = sorted(_ranked(best.context), key=_first)
        if len(inner) > 1 and inner[0][0] == inner[1][0]:
            break
        _, best, relative = inner[0]
        path += relative
    return path, best.message


def _first(entry: tuple):
    return entry[0]


def _format_path(path: tuple) -> str:
    """`linux.namespaces[2].type`; a key that is no identifier is quoted: `sysctl["net.ipv4.ip_forward"]`."""
    text = ""
    for part in path:
        if type(part) is int:
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return text
