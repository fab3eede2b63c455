"""python -m ordermesh_devstack: the same as `ordermesh-dev`."""

from .cli import main

main()
