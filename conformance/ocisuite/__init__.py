"""A runtime-agnostic OCI runtime-spec conformance suite (rootlet issue #7).

Entry point: ``conformance/run --runtime PATH``; see conformance/README.md.
"""
