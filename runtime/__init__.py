"""rootlet: a rootless-first, runc-compatible OCI container runtime."""

from runtime import bundle

__version__ = "0.1.0"

bundle.install(__path__[0])  # an installed rootlet's modules come from one file (runtime/bundle.py)
