"""`ordermesh shipping …`: staff commands and reads of the shipping service."""

import typer

app = typer.Typer(help="The shipping service.", no_args_is_help=True)
