"""`ordermesh points …`: staff commands and reads of the points service."""

import typer

app = typer.Typer(help="The points service.", no_args_is_help=True)
