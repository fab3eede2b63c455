"""Runs the points service: python -m ordermesh_points."""

from .app import main

main()
