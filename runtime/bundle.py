"""An installed rootlet imports its own modules from one file, `runtime/modules.bundle`.

A command imports ~40 of them, and importlib spends about as long finding
each one (a directory check, a stat of the source, opening and validating
its .pyc) as unmarshalling it: ~3 ms of a container start. setup.py writes
the compiled code of every module of the package into one file with an
index; the finder below serves them from it with one read each. This is
what CPython does for its own start-up modules, which it freezes.

A source checkout has no bundle and imports as usual. A bundle written by
another Python version (its magic number differs) is ignored. Code objects
carry paths relative to site-packages ("runtime/cli.py"), which tracebacks
resolve through sys.path; each module's `__file__` is its absolute path.
"""

import marshal
import os
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

NAME = "modules.bundle"


def write(package_dir: str, target: str) -> None:
    """Compile every module under `package_dir` (the `runtime` package) into `target`."""
    top = os.path.dirname(package_dir)
    index, blobs, offset = {}, [], 0
    for directory, subdirectories, files in os.walk(package_dir):
        subdirectories.sort()
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            relative = os.path.relpath(f"{directory}/{file}", top)
            parts = relative[:-3].split("/")
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            if name == "runtime":
                continue  # imported as usual: it is what installs the finder
            with open(f"{directory}/{file}", "rb") as source:
                code = compile(source.read(), relative, "exec", dont_inherit=True)
            blob = marshal.dumps(code)
            index[name] = (is_package, relative, offset, len(blob))
            blobs.append(blob)
            offset += len(blob)
    header = marshal.dumps((MAGIC_NUMBER, index))
    with open(target, "wb") as out:
        out.write(len(header).to_bytes(4, "little") + header + b"".join(blobs))


class Finder:
    """A meta path finder and loader for the modules in one bundle."""

    def __init__(self, path: str, identity: tuple[int, int], top: str, index: dict, base: int):
        self.path = path
        self.identity = identity  # (st_dev, st_ino) of the file the index came from
        self.top = top  # the directory that holds the `runtime` package
        self.index = index
        self.base = base  # where the code starts, after the index

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        is_package, relative, _offset, _length = entry
        origin = f"{self.top}/{relative}"
        spec = ModuleSpec(name, self, origin=origin, is_package=is_package)
        spec.has_location = True  # gives the module its __file__
        if is_package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]  # its extension modules
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        _is_package, _relative, offset, length = self.index[module.__name__]
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _identity(fd) != self.identity:  # not at these offsets: a reinstall replaced it
                raise ImportError(f"{self.path} was replaced while rootlet ran", name=module.__name__)
            code = marshal.loads(os.pread(fd, length, self.base + offset))
        finally:
            os.close(fd)
        exec(code, module.__dict__)


def _identity(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def install(package_dir: str) -> None:
    """Put the bundle beside `package_dir`'s __init__ first on sys.meta_path, if there is one."""
    path = f"{package_dir}/{NAME}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        identity = _identity(fd)
        size = int.from_bytes(os.pread(fd, 4, 0), "little")
        magic, index = marshal.loads(os.pread(fd, size, 4))
    finally:
        os.close(fd)
    if magic == MAGIC_NUMBER:
        sys.meta_path.insert(0, Finder(path, identity, os.path.dirname(package_dir), index, 4 + size))
