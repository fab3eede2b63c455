"""`python -m ordermesh_console` runs the console."""

from .app import main

main()
