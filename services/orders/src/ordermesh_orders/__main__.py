"""Runs the orders service: python -m ordermesh_orders."""

from .app import main

main()
