"""Helpers shared by the core test files."""
