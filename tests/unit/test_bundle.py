"""runtime/bundle.py: an installed rootlet imports its modules from one file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from runtime import bundle

CHECKOUT = Path(__file__).resolve().parents[2] / "runtime"

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import runtime.cli, runtime.log, runtime.spec.schema
print(type(runtime.cli.__loader__).__name__)
print(runtime.spec.schema.schema_path("config"))
print(hasattr(runtime.log, "EDITED_AFTER_BUNDLING"))
"""


def _copy_package(tmp_path: Path) -> Path:
    package = tmp_path / "runtime"
    shutil.copytree(CHECKOUT, package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "specs"))
    bundle.write(str(package), str(package / bundle.NAME))
    with open(package / "log.py", "a") as log:
        log.write("\nEDITED_AFTER_BUNDLING = True\n")
    return package


def _probe(top: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(top)], capture_output=True, text=True,
                          check=True)
    return done.stdout.split("\n")


def test_modules_come_from_the_bundle_with_their_own_paths(tmp_path):
    package = _copy_package(tmp_path)
    loader, schema, edited = _probe(tmp_path)[:3]
    assert loader == "Finder"
    assert schema == f"{package}/specs/config-schema.json"  # __file__ is the module's absolute path
    assert edited == "False"  # the code is the bundle's, not the source file's


def test_a_bundle_of_another_python_is_ignored(tmp_path):
    package = _copy_package(tmp_path)
    data = bytearray((package / bundle.NAME).read_bytes())
    magic = data.index(bundle.MAGIC_NUMBER)
    data[magic] ^= 0xFF
    (package / bundle.NAME).write_bytes(bytes(data))
    loader, _schema, edited = _probe(tmp_path)[:3]
    assert loader == "SourceFileLoader"
    assert edited == "True"


def test_tracebacks_name_the_module_file(tmp_path):
    _copy_package(tmp_path)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         "import sys, traceback; sys.path.insert(0, sys.argv[1]); from runtime import jsonio\n"
         "try:\n    jsonio.load_file('/nonexistent', what='x')\nexcept OSError:\n    traceback.print_exc()",
         str(tmp_path)],
        capture_output=True, text=True, check=True)
    assert 'File "runtime/jsonio.py"' in done.stderr
    assert "open(path" in done.stderr  # the source line, found through sys.path


def test_a_bundle_replaced_while_running_is_an_import_error_not_wrong_code(tmp_path):
    _copy_package(tmp_path)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         "import shutil, sys; sys.path.insert(0, sys.argv[1]); import runtime\n"
         "bundle = f'{sys.argv[1]}/runtime/modules.bundle'\n"
         "shutil.copy(bundle, bundle + '.new'); shutil.move(bundle + '.new', bundle)  # as a reinstall does\n"
         "try:\n    import runtime.log\nexcept ImportError as err:\n    print(err)",
         str(tmp_path)],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"{tmp_path}/runtime/modules.bundle was replaced while rootlet ran"
