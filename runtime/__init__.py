"""rootlet: a rootless-first, runc-compatible OCI container runtime."""

__version__ = "0.1.0"
