"""`ordermesh notify …`: staff commands and reads of the notify service."""

import typer

app = typer.Typer(help="The notify service.", no_args_is_help=True)
