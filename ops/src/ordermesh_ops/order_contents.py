"""Printing what an order holds for staff: customer, addresses, lines per delivery, and charges."""

from typing import Any

from .output import console, print_rows


def _address(address: dict[str, Any] | None) -> str:
    if not address:
        return ""
    parts = [f"〒{address.get('postal_code', '')}", address.get("prefecture"), address.get("city"), address.get("line1"), address.get("line2")]
    text = " ".join(str(p) for p in parts if p)
    return f"{address.get('name', '')} · {text}" + (f" · {address['phone']}" if address.get("phone") else "")


def print_contents(view: dict[str, Any]) -> None:
    """Customer, billing address, each delivery's address and lines, and the charges of an order view."""
    contents = view.get("contents") or {}
    customer = contents.get("customer") or {}
    currency = view.get("currency", "")
    console.print(
        f"customer {customer.get('customer_id', '')} · {customer.get('name', '')} · {customer.get('email', '')}"
        + (f" · {customer['phone']}" if customer.get("phone") else "")
    )
    console.print(f"billing: {_address(contents.get('billing_address'))}")
    for index, delivery in enumerate(contents.get("deliveries") or []):
        slot = " ".join(str(x) for x in (delivery.get("requested_date"), delivery.get("time_slot")) if x)
        console.print(f"delivery {index}: {_address(delivery.get('address'))}" + (f" · {slot}" if slot else "") + (f" · {delivery['carrier']}" if delivery.get("carrier") else ""))
        print_rows(
            [
                {"sku": line["sku"], "name": line["name"], "unit price": line["unit_price"], "qty": line["quantity"],
                 "tax %": line["tax_rate_percent"], "discount": line.get("line_discount", 0),
                 "amount": line["unit_price"] * line["quantity"] - line.get("line_discount", 0)}
                for line in delivery.get("lines") or []
            ],
            title=f"delivery {index} lines",
        )
    charges = contents.get("charges") or {}
    print_rows([{**charges, "currency": currency, "paid": view.get("paid", "")}], title="charges")
