"""`ordermesh`: the staff CLI, one sub-command group per service."""

import typer

from . import exports  # noqa: F401 - adds `orders export` to the orders group
from . import dlq, notify, orders, payments, points, shipping

app = typer.Typer(help="ordermesh staff CLI: commands go over Kafka, reads come from each service's JSON endpoint.")
app.add_typer(orders.app, name="orders")
app.add_typer(payments.app, name="payments")
app.add_typer(shipping.app, name="shipping")
app.add_typer(points.app, name="points")
app.add_typer(notify.app, name="notify")
app.add_typer(dlq.app, name="dlq")
