"""Build rootlet: the Cython extensions in csrc/, the `runtime` package with
its JSON Schemas, and the `rootlet` launcher."""

import os
import shutil
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.build_scripts import build_scripts as _build_scripts
except ImportError:  # older setuptools keep it in distutils only
    from distutils.command.build_scripts import build_scripts as _build_scripts

HERE = Path(__file__).parent


class BuildPackage(build_py):
    """Install specs/*.json as runtime/specs/ package data (in the tree,
    runtime/specs is a symlink to ../specs), and the compiled modules as
    one bundle that an installed rootlet imports from (runtime/bundle.py)."""

    def run(self):
        super().run()
        package = Path(self.build_lib) / "runtime"
        target = package / "specs"
        if target.is_symlink():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for schema in (HERE / "specs").glob("*.json"):
            shutil.copy(schema, target / schema.name)
        sys.path.insert(0, str(HERE))
        from runtime import bundle

        # From the sources, not build_lib, which may keep modules an older build copied.
        bundle.write(str(HERE / "runtime"), str(package / bundle.NAME))


class BuildLauncher(_build_scripts):
    """An installed bin/rootlet starts its interpreter directly. In a
    checkout a shell header finds the interpreter beside the script; here
    we know it (a venv's python is a symlink to it, and the launcher puts the
    venv's site-packages on sys.path itself), which saves the shell's exec."""

    def copy_scripts(self):
        outfiles, updated = super().copy_scripts()
        interpreter = os.path.realpath(sys.executable)
        for script in outfiles:
            text = Path(script).read_text()
            if text.startswith("#!/bin/sh\n''':'\n"):
                python = text.split("\n'''\n", 1)[1]
                Path(script).write_text(f"#!{interpreter} -IS\n{python}")
        return outfiles, updated


extensions = [
    Extension("runtime._linux", ["csrc/linux.pyx"]),
    Extension("runtime._seccomp", ["csrc/seccomp.pyx"], libraries=["seccomp"]),
    Extension("runtime._bpf", ["csrc/bpf.pyx"]),
]

setup(
    name="rootlet",
    version="0.1.0",
    description="A rootless-first, runc-compatible OCI container runtime",
    python_requires=">=3.11",
    packages=["runtime", "runtime.spec", "runtime.sys", "runtime.cgroups"],
    ext_modules=cythonize(extensions, language_level=3, quiet=True),
    scripts=["bin/rootlet"],
    cmdclass={"build_py": BuildPackage, "build_scripts": BuildLauncher},
    extras_require={"test": ["pytest", "jsonschema"]},
)
