"""The OCI runtime-spec documents: their schemas and their in-memory model."""
