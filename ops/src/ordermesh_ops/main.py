"""`ordermesh`: the staff CLI, one sub-command group per service."""

import typer

from . import exports, order_setup  # noqa: F401 - add `orders export`, `set-rules`, `set-statuses`, `set-status`, `enter`
from . import dlq, lag, notify, orders, outbox, output, payments, points, shipping, stuck, trace

app = typer.Typer(help="ordermesh staff CLI: commands go over Kafka, reads come from each service's JSON endpoint.")


@app.callback()
def main(
    as_json: bool = typer.Option(
        False, "--json", help="Print command replies as JSON (CommandAccepted / CommandRejected), e.g. `ordermesh --json orders hold …`."
    ),
) -> None:
    """Where ordermesh runs comes from the environment, completed by the nearest `.run/ops.env` (searched from the
    current directory upwards), `ORDERMESH_OPS_ENV`, or `~/.config/ordermesh/ops.env`."""
    output.REPLIES_AS_JSON["on"] = as_json
    output.write_what_cannot_be_encoded_escaped()


app.add_typer(orders.app, name="orders")
app.add_typer(payments.app, name="payments")
app.add_typer(shipping.app, name="shipping")
app.add_typer(points.app, name="points")
app.add_typer(notify.app, name="notify")
app.add_typer(dlq.app, name="dlq")
app.add_typer(outbox.app, name="outbox")
app.command("lag")(lag.lag)
orders.app.command("stuck")(stuck.stuck)
orders.app.command("trace")(trace.trace)
