"""`ordermesh orders …`: staff commands and reads of the orders service."""

import typer

app = typer.Typer(help="The orders service.", no_args_is_help=True)
