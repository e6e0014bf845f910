"""Helpers for the real-container test suites (tests/integration, tests/rootless)."""
