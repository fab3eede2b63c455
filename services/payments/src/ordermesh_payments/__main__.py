"""Runs the payments service: python -m ordermesh_payments."""

from .app import main

main()
