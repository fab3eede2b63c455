"""Runs the notify service: python -m ordermesh_notify."""

from .app import main

main()
