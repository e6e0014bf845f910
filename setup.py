"""Build rootlet: the Cython extensions in csrc/, the `runtime` package with
its JSON Schemas, and the `rootlet` launcher."""

import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent


class BuildWithSchemas(build_py):
    """Install specs/*.json as runtime/specs/ package data (in the tree,
    runtime/specs is a symlink to ../specs)."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "runtime" / "specs"
        if target.is_symlink():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for schema in (HERE / "specs").glob("*.json"):
            shutil.copy(schema, target / schema.name)


extensions = [
    Extension("runtime._linux", ["csrc/linux.pyx"]),
    Extension("runtime._seccomp", ["csrc/seccomp.pyx"], libraries=["seccomp"]),
    Extension("runtime._cgroupfs", ["csrc/cgroupfs.pyx"]),
]

setup(
    name="rootlet",
    version="0.1.0",
    description="A rootless-first, runc-compatible OCI container runtime",
    python_requires=">=3.11",
    packages=["runtime", "runtime.spec", "runtime.sys", "runtime.cgroups"],
    ext_modules=cythonize(extensions, language_level=3, quiet=True),
    scripts=["bin/rootlet"],
    cmdclass={"build_py": BuildWithSchemas},
    extras_require={"test": ["pytest", "jsonschema"]},
)
