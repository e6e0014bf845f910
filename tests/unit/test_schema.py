"""runtime.spec.schema against jsonschema, the oracle.

Our validator interprets specs/*.json itself so that the hot path needs no
`jsonschema` (nor `re`, nor `json`). These tests hold it to jsonschema's
verdict, to the path of jsonschema's `best_match` error and to its wording,
over runc's default configs, hand-written full documents, named mutations and
a sweep that breaks every field of the full config in several ways.
"""

from __future__ import annotations

import copy
import functools
import json
import pathlib
import shutil
import subprocess
import sys

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from runtime.errors import ConfigError
from runtime.spec import schema

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
SCHEMA_NAMES = ("config", "state", "features")
DELETE = object()


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@functools.cache
def oracle(schema_name: str) -> jsonschema.protocols.Validator:
    document = json.loads((REPO / "specs" / f"{schema_name}-schema.json").read_text())
    return jsonschema.validators.validator_for(document)(document)


def our_error(document, schema_name: str = "config") -> ConfigError | None:
    try:
        schema.validate(document, schema_name)
    except ConfigError as err:
        return err
    return None


def assert_agrees(document, schema_name: str = "config") -> ConfigError | None:
    """Same verdict as jsonschema; for an invalid document the same path and message."""
    expected = best_match(oracle(schema_name).iter_errors(document))
    got = our_error(document, schema_name)
    if expected is None:
        assert got is None, f"we refuse a document jsonschema accepts: {got}"
        return None
    assert got is not None, f"we accept a document jsonschema refuses: {expected.message}"
    expected_path = schema._format_path(tuple(expected.absolute_path)) or f"{schema_name}.json"
    assert (got.path, got.message) == (expected_path, expected.message)
    return got


def mutated(document, path: tuple, value):
    """A deep copy of `document` with the node at `path` replaced, or deleted for DELETE."""
    result = copy.deepcopy(document)
    if not path:
        return result if value is DELETE else value
    parent = result
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def runc_spec(tmp_path: pathlib.Path, *flags: str) -> dict:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    subprocess.run(["runc", "spec", *flags], cwd=tmp_path, check=True)
    return json.loads((tmp_path / "config.json").read_text())


@pytest.fixture(scope="module")
def full_config() -> dict:
    return load_fixture("config-full.json")


@pytest.mark.parametrize("schema_name", SCHEMA_NAMES)
def test_schema_is_valid_against_its_metaschema(schema_name):
    validator = oracle(schema_name)
    validator.check_schema(validator.schema)


@pytest.mark.parametrize("schema_name", SCHEMA_NAMES)
def test_schema_file_is_found_through_the_package(schema_name):
    path = pathlib.Path(schema.schema_path(schema_name))
    assert path.is_file()
    assert json.loads(path.read_text()) == oracle(schema_name).schema


def test_runc_default_config_is_accepted(tmp_path):
    assert assert_agrees(runc_spec(tmp_path)) is None


def test_runc_rootless_config_is_accepted(tmp_path):
    assert assert_agrees(runc_spec(tmp_path, "--rootless")) is None


def test_config_using_every_field_is_accepted(full_config):
    assert assert_agrees(full_config) is None


def test_minimal_config_is_accepted():
    assert assert_agrees({"ociVersion": "1.2.1", "root": {"path": "rootfs"}}) is None


def test_empty_args_is_refused_naming_process_args(full_config):
    err = assert_agrees(mutated(full_config, ("process", "args"), []))
    assert err.path == "process.args"
    assert str(err) == "process.args: [] should be non-empty"


def test_bad_namespace_type_names_the_entry_and_the_choices(full_config):
    err = assert_agrees(mutated(full_config, ("linux", "namespaces", 2, "type"), "foo"))
    assert err.path == "linux.namespaces[2].type"
    assert (
        err.message
        == "'foo' is not one of ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']"
    )


def test_missing_required_property_names_its_parent(full_config):
    err = assert_agrees(mutated(full_config, ("mounts", 0, "destination"), DELETE))
    assert (err.path, err.message) == ("mounts[0]", "'destination' is a required property")


def test_error_at_the_top_is_reported_as_config_json(full_config):
    err = assert_agrees(mutated(full_config, ("ociVersion",), DELETE))
    assert str(err) == "config.json: 'ociVersion' is a required property"


def test_of_several_errors_the_shallowest_is_reported_like_best_match(full_config):
    document = mutated(full_config, ("linux", "namespaces", 2, "type"), "foo")
    document = mutated(document, ("process", "user", "uid"), -1)
    document = mutated(document, ("hostname",), 7)
    err = assert_agrees(document)
    assert (err.path, err.message) == ("hostname", "7 is not of type 'string'")


def test_map_keys_that_are_not_identifiers_are_quoted_in_the_path(full_config):
    err = assert_agrees(mutated(full_config, ("linux", "sysctl", "net.ipv4.ip_forward"), 1))
    assert err.path == 'linux.sysctl["net.ipv4.ip_forward"]'


def test_weight_device_without_any_weight_is_refused_as_a_whole(full_config):
    entry = {"major": 8, "minor": 48}
    err = assert_agrees(mutated(full_config, ("linux", "resources", "blockIO", "weightDevice", 1), entry))
    assert err.path == "linux.resources.blockIO.weightDevice[1]"
    assert err.message == f"{entry!r} is not valid under any of the given schemas"


def test_fifo_device_needs_no_major_but_a_char_device_does(full_config):
    assert assert_agrees(full_config) is None
    err = assert_agrees(mutated(full_config, ("linux", "devices", 0, "major"), DELETE))
    assert (err.path, err.message) == ("linux.devices[0]", "'major' is a required property")


# (id, path, new value or DELETE, path we must report)
MUTATIONS = [
    ("args-not-array", ("process", "args"), "sh", "process.args"),
    ("args-item-not-string", ("process", "args", 1), 1, "process.args[1]"),
    ("args-missing", ("process", "args"), DELETE, "process"),
    ("cwd-missing", ("process", "cwd"), DELETE, "process"),
    ("cwd-empty", ("process", "cwd"), "", "process.cwd"),
    ("process-not-object", ("process",), [], "process"),
    ("document-not-object", (), [], "config.json"),
    ("oci-version-not-string", ("ociVersion",), 1, "ociVersion"),
    ("root-missing", ("root",), DELETE, "config.json"),
    ("root-path-missing", ("root", "path"), DELETE, "root"),
    ("root-readonly-not-bool", ("root", "readonly"), "yes", "root.readonly"),
    ("uid-negative", ("process", "user", "uid"), -1, "process.user.uid"),
    ("uid-over-uint32", ("process", "user", "uid"), 4294967296, "process.user.uid"),
    ("uid-string", ("process", "user", "uid"), "0", "process.user.uid"),
    ("uid-bool", ("process", "user", "uid"), True, "process.user.uid"),
    ("gid-fraction", ("process", "user", "gid"), 1.5, "process.user.gid"),
    ("gid-missing", ("process", "user", "gid"), DELETE, "process.user"),
    (
        "additional-gid-negative",
        ("process", "user", "additionalGids", 1),
        -6,
        "process.user.additionalGids[1]",
    ),
    ("umask-over-0777", ("process", "user", "umask"), 512, "process.user.umask"),
    ("namespace-type-missing", ("linux", "namespaces", 0), {"path": "/x"}, "linux.namespaces[0]"),
    ("namespaces-not-array", ("linux", "namespaces"), {}, "linux.namespaces"),
    (
        "capability-not-a-string",
        ("process", "capabilities", "bounding", 1),
        5,
        "process.capabilities.bounding[1]",
    ),
    ("rlimit-type-unknown", ("process", "rlimits", 0, "type"), "RLIMIT_FOO", "process.rlimits[0].type"),
    ("rlimit-soft-negative", ("process", "rlimits", 0, "soft"), -1, "process.rlimits[0].soft"),
    ("rlimit-hard-over-uint64", ("process", "rlimits", 1, "hard"), 2**64, "process.rlimits[1].hard"),
    ("rlimit-hard-missing", ("process", "rlimits", 0, "hard"), DELETE, "process.rlimits[0]"),
    ("oom-score-adj-over-1000", ("process", "oomScoreAdj"), 1001, "process.oomScoreAdj"),
    ("io-priority-over-7", ("process", "ioPriority", "priority"), 8, "process.ioPriority.priority"),
    ("io-priority-class-unknown", ("process", "ioPriority", "class"), "RT", "process.ioPriority.class"),
    (
        "scheduler-policy-unknown",
        ("process", "scheduler", "policy"),
        "SCHED_FAST",
        "process.scheduler.policy",
    ),
    ("scheduler-flag-unknown", ("process", "scheduler", "flags", 0), "X", "process.scheduler.flags[0]"),
    ("console-width-missing", ("process", "consoleSize", "width"), DELETE, "process.consoleSize"),
    (
        "seccomp-action-unknown",
        ("linux", "seccomp", "syscalls", 0, "action"),
        "SCMP_ACT_FOO",
        "linux.seccomp.syscalls[0].action",
    ),
    (
        "seccomp-default-action-unknown",
        ("linux", "seccomp", "defaultAction"),
        "ALLOW",
        "linux.seccomp.defaultAction",
    ),
    ("seccomp-default-action-missing", ("linux", "seccomp", "defaultAction"), DELETE, "linux.seccomp"),
    (
        "seccomp-op-unknown",
        ("linux", "seccomp", "syscalls", 3, "args", 0, "op"),
        "SCMP_CMP_XX",
        "linux.seccomp.syscalls[3].args[0].op",
    ),
    (
        "seccomp-arg-index-over-5",
        ("linux", "seccomp", "syscalls", 3, "args", 1, "index"),
        6,
        "linux.seccomp.syscalls[3].args[1].index",
    ),
    (
        "seccomp-arch-unknown",
        ("linux", "seccomp", "architectures", 1),
        "SCMP_ARCH_Z80",
        "linux.seccomp.architectures[1]",
    ),
    (
        "seccomp-flag-unknown",
        ("linux", "seccomp", "flags", 0),
        "SECCOMP_FILTER_FLAG_X",
        "linux.seccomp.flags[0]",
    ),
    (
        "seccomp-names-empty",
        ("linux", "seccomp", "syscalls", 1, "names"),
        [],
        "linux.seccomp.syscalls[1].names",
    ),
    ("seccomp-metadata-without-listener", ("linux", "seccomp", "listenerPath"), DELETE, "linux.seccomp"),
    ("device-type-unknown", ("linux", "devices", 0, "type"), "x", "linux.devices[0].type"),
    ("device-minor-missing", ("linux", "devices", 2, "minor"), DELETE, "linux.devices[2]"),
    (
        "device-rule-type-u",
        ("linux", "resources", "devices", 1, "type"),
        "u",
        "linux.resources.devices[1].type",
    ),
    (
        "device-rule-allow-missing",
        ("linux", "resources", "devices", 0, "allow"),
        DELETE,
        "linux.resources.devices[0]",
    ),
    ("mount-options-not-array", ("mounts", 0, "options"), "ro", "mounts[0].options"),
    ("mount-uid-mappings-alone", ("mounts", 1, "gidMappings"), DELETE, "mounts[1]"),
    ("id-mapping-size-missing", ("linux", "uidMappings", 0, "size"), DELETE, "linux.uidMappings[0]"),
    ("hook-path-missing", ("hooks", "poststart", 0, "path"), DELETE, "hooks.poststart[0]"),
    ("hook-timeout-zero", ("hooks", "createRuntime", 0, "timeout"), 0, "hooks.createRuntime[0].timeout"),
    ("hooks-not-array", ("hooks", "poststop"), {"path": "/x"}, "hooks.poststop"),
    ("annotation-not-string", ("annotations", "org.example.key"), 1, 'annotations["org.example.key"]'),
    ("rootfs-propagation-unknown", ("linux", "rootfsPropagation"), "everywhere", "linux.rootfsPropagation"),
    ("time-offset-unknown-clock", ("linux", "timeOffsets", "realtime"), {"secs": 1}, "linux.timeOffsets"),
    (
        "time-offset-nanosecs-negative",
        ("linux", "timeOffsets", "boottime", "nanosecs"),
        -1,
        "linux.timeOffsets.boottime.nanosecs",
    ),
    (
        "rdma-entry-limits-nothing",
        ("linux", "resources", "rdma", "mlx4_0"),
        {},
        "linux.resources.rdma.mlx4_0",
    ),
    ("memory-limit-string", ("linux", "resources", "memory", "limit"), "1G", "linux.resources.memory.limit"),
    ("pids-limit-fraction", ("linux", "resources", "pids", "limit"), 1.5, "linux.resources.pids.limit"),
    (
        "blkio-weight-over-uint16",
        ("linux", "resources", "blockIO", "weight"),
        65536,
        "linux.resources.blockIO.weight",
    ),
    (
        "throttle-rate-missing",
        ("linux", "resources", "blockIO", "throttleReadBpsDevice", 0, "rate"),
        DELETE,
        "linux.resources.blockIO.throttleReadBpsDevice[0]",
    ),
    (
        "hugepage-size-missing",
        ("linux", "resources", "hugepageLimits", 0, "pageSize"),
        DELETE,
        "linux.resources.hugepageLimits[0]",
    ),
    (
        "unified-value-not-string",
        ("linux", "resources", "unified", "memory.high"),
        5,
        'linux.resources.unified["memory.high"]',
    ),
    ("personality-domain-unknown", ("linux", "personality", "domain"), "BSD", "linux.personality.domain"),
    ("intel-rdt-schemata-number", ("linux", "intelRdt", "schemata"), 1, "linux.intelRdt.schemata"),
    ("linux-not-object", ("linux",), [], "linux"),
    ("masked-paths-not-array", ("linux", "maskedPaths"), "/proc/kcore", "linux.maskedPaths"),
]


@pytest.mark.parametrize(
    ("path", "value", "expected_path"),
    [entry[1:] for entry in MUTATIONS],
    ids=[entry[0] for entry in MUTATIONS],
)
def test_mutation_is_refused_like_jsonschema_at_the_expected_path(full_config, path, value, expected_path):
    err = assert_agrees(mutated(full_config, path, value))
    assert err.path == expected_path


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "-1 is less than the minimum of 0"),
        ("0", "'0' is not of type 'integer'"),
        (4294967296, "4294967296 is greater than the maximum of 4294967295"),
    ],
)
def test_uid_messages_use_jsonschema_wording(full_config, value, message):
    err = assert_agrees(mutated(full_config, ("process", "user", "uid"), value))
    assert err.message == message


def nodes(node, prefix=()):
    """(path, value) for `node` and what is inside it; of a list of scalars only both ends."""
    yield prefix, node
    if isinstance(node, dict):
        children = list(node.items())
    elif node and isinstance(node, list):
        children = list(enumerate(node))
        if not isinstance(node[0], (dict, list)):
            children = children[:1] + children[1:][-1:]
    else:
        children = []
    for key, child in children:
        yield from nodes(child, (*prefix, key))


def breakages(value) -> tuple:
    """Replacements that break a node holding `value`: another type, and out-of-range numbers."""
    if isinstance(value, bool):
        return ("true",)
    if isinstance(value, int):
        return ("1", -1, 2**64, 1.5)
    if isinstance(value, str):
        return (1, "")
    return ({},) if isinstance(value, list) else ([],)


def sweep_units(config: dict) -> list:
    """Top-level fields, with `linux` split into its own fields: the units the sweep breaks."""
    return [("linux", key) for key in config["linux"]] + [(key,) for key in config if key != "linux"]


def skeleton_with(config: dict, unit: tuple) -> dict:
    """The required fields plus just the branch of `config` leading to `unit`."""
    document = {"ociVersion": config["ociVersion"], "root": config["root"]}
    inner, source = document, config
    for key in unit[:-1]:
        inner[key] = {}
        inner, source = inner[key], source[key]
    inner[unit[-1]] = source[unit[-1]]
    return document


@pytest.mark.parametrize("unit", sweep_units(load_fixture("config-full.json")), ids=".".join)
def test_breaking_any_field_of_the_full_config_agrees_with_jsonschema(full_config, unit):
    """Each node of one unit deleted, or given another type or an out-of-range number.

    The unit sits in a document holding only it and the required fields, so
    that jsonschema, the slow side, walks no more than it must.
    """
    document = skeleton_with(full_config, unit)
    node = document
    for key in unit:
        node = node[key]
    for path, value in nodes(node, unit):
        for replacement in (DELETE, *breakages(value)):
            assert_agrees(mutated(document, path, replacement))


def test_state_of_a_running_container_is_accepted():
    assert assert_agrees(load_fixture("state-running.json"), "state") is None


@pytest.mark.parametrize("status", ["creating", "stopped", "paused"])
def test_state_without_pid_is_accepted_when_no_process_is_promised(status):
    state = mutated(load_fixture("state-running.json"), ("pid",), DELETE)
    assert assert_agrees(mutated(state, ("status",), status), "state") is None


def test_created_state_without_pid_is_refused_at_the_top():
    state = mutated(load_fixture("state-running.json"), ("pid",), DELETE)
    err = assert_agrees(mutated(state, ("status",), "created"), "state")
    assert str(err) == "state.json: 'pid' is a required property"


def test_unknown_state_status_is_refused():
    err = assert_agrees(mutated(load_fixture("state-running.json"), ("status",), "exploded"), "state")
    assert err.path == "status"


def test_rootlet_features_document_is_accepted():
    assert assert_agrees(load_fixture("features-rootlet.json"), "features") is None


def test_runc_features_document_is_accepted():
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    features = json.loads(subprocess.run(["runc", "features"], capture_output=True, check=True).stdout)
    assert assert_agrees(features, "features") is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("ociVersionMax",), DELETE),
        (("hooks", 0), "preStart"),
        (("linux", "namespaces", 0), "cgroups"),
        (("linux", "mountExtensions", "idmap", "enabled"), "yes"),
    ],
)
def test_broken_features_document_is_refused_like_jsonschema(path, value):
    assert assert_agrees(mutated(load_fixture("features-rootlet.json"), path, value), "features") is not None


# Small schemas that exercise the interpreter's corners, whatever specs/ uses today.
INTERPRETER_CASES = [
    (
        "anyOf-prefers-the-branch-whose-type-matches",
        {"anyOf": [{"type": "object", "required": ["a"]}, {"required": ["b"]}]},
        {},
    ),
    ("anyOf-tie-reports-the-anyOf-itself", {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {}),
    (
        "anyOf-descends-to-the-deepest-error",
        {"anyOf": [{"properties": {"x": {"type": "string"}}}, {"required": ["y"]}]},
        {"x": 1},
    ),
    ("integral-float-is-an-integer", {"type": "integer", "maximum": 3}, 3.0),
    ("fraction-is-not-an-integer", {"type": "integer"}, 2.5),
    ("bool-is-not-an-integer", {"type": "integer", "minimum": 0}, False),
    ("type-list", {"type": ["string", "array"], "items": {"type": "string"}}, [1]),
    ("type-list-mismatch", {"type": ["string", "array"]}, {}),
    ("const", {"properties": {"k": {"const": "p"}}}, {"k": "q"}),
    ("if-then", {"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}),
    ("if-else", {"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {}),
    ("dependent-required", {"dependentRequired": {"a": ["b", "c"]}}, {"a": 1, "c": 2}),
    (
        "property-names",
        {"propertyNames": {"enum": ["x"]}, "additionalProperties": {"type": "integer"}},
        {"x": 1, "y": "2"},
    ),
    (
        "additional-properties-skip-the-listed-ones",
        {"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
        {"a": "x", "b": "y"},
    ),
    ("required-reports-the-first-missing", {"type": "object", "required": ["a", "b"]}, {}),
    ("min-length-two", {"minLength": 2}, "x"),
    ("min-items-two", {"minItems": 2}, [1]),
    (
        "siblings-compare-by-path",
        {"properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
        {"a": 1, "b": 2},
    ),
    ("ref-with-siblings", {"$defs": {"d": {"required": ["a"]}}, "$ref": "#/$defs/d", "required": ["b"]}, {}),
]


@pytest.mark.parametrize(
    ("schema_document", "instance"),
    [case[1:] for case in INTERPRETER_CASES],
    ids=[case[0] for case in INTERPRETER_CASES],
)
def test_interpreter_reports_what_jsonschema_best_match_reports(schema_document, instance):
    expected = best_match(jsonschema.Draft202012Validator(schema_document).iter_errors(instance))
    errors = schema._Compiler(schema_document).compile(schema_document)(instance)
    got = schema._best_match(errors) if errors else None
    assert got == (None if expected is None else (tuple(expected.absolute_path), expected.message))


def test_a_schema_keyword_we_do_not_interpret_is_refused_when_compiling():
    with pytest.raises(ValueError, match="'pattern'"):
        schema._Compiler({}).compile({"type": "string", "pattern": "^/"})


def test_importing_the_validator_pulls_in_neither_re_nor_json():
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); import runtime.spec.schema; "
        "print(' '.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    modules = set(result.stdout.split())
    assert "runtime.spec.schema" in modules
    assert not modules & {"re", "json", "jsonschema"}
