"""Integrations of the points service (none yet)."""
