"""Runs the shipping service: python -m ordermesh_shipping."""

from .app import main

main()
