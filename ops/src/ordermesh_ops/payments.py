"""`ordermesh payments …`: staff commands and reads of the payments service."""

import typer

app = typer.Typer(help="The payments service.", no_args_is_help=True)
