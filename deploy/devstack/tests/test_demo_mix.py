"""The demo traffic of `make run` mixes payment methods and includes orders that stop for staff; its live view shows
every order in the system, each service's health and lag, and dead letters per topic."""

import time
import uuid

from rich.console import Console

from ordermesh_contracts import PaymentMethod
from ordermesh_devstack.cli import _view
from ordermesh_devstack.demo import OrderTrack, Watcher, completing, mixed_demo_order
from ordermesh_devstack.live import Monitor


def test_the_demo_mix_has_several_methods_and_orders_that_stop_for_staff_or_the_customer():
    kinds = [mixed_demo_order(n)[1] for n in range(1, 101)]
    methods = {mixed_demo_order(n)[0].payment.method for n in range(1, 101)}
    assert {PaymentMethod.CARD, PaymentMethod.CASH_ON_DELIVERY, PaymentMethod.BANK_TRANSFER, PaymentMethod.CONVENIENCE_STORE} <= methods
    assert {"address check for staff", "watch-listed customer", "awaits a bank transfer"} <= set(kinds)
    assert completing(100) == sum(1 for k in kinds if k in ("card", "cash on delivery")) == 75
    wrong = mixed_demo_order(18)[0]
    assert (wrong.deliveries[0].address.postal_code, wrong.deliveries[0].address.prefecture) == ("530-0001", "東京都")


def test_the_live_view_shows_every_order_service_health_lag_and_dead_letters_per_topic():
    watcher = Watcher("unused:9092")
    watcher.published = 3
    for stage in ("completed", "awaiting_payment", "review", "review"):
        watcher.tracks[uuid.uuid4()] = OrderTrack(submitted_at=time.monotonic(), stage=stage)
    watcher.dead_letters = 2
    watcher.dead_letters_by_topic.update({"shop.orders.v1": 2})
    monitor = Monitor("unused:9092", {"orders": 1, "payments": 2})
    monitor.health.update(orders="ready", payments="not ready: kafka")
    monitor.lag.update(orders=0, payments=42)
    console = Console(record=True, width=200)
    console.print(_view(watcher, monitor, time.monotonic() - 10, watcher.published))
    text = console.export_text()
    assert "4 orders in the system (3 from the demo shop)" in text
    assert "not ready: kafka" in text and "42" in text
    assert "dead letters: 2" in text and "shop.orders.v1" in text
