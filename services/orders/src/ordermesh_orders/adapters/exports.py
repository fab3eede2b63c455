"""The orders CSV export for staff: one row per order with its charges and the amount and tax of each rate."""

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from ordermesh_servicekit.http_input import query_text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store_exports
from ..domain.taxes import export_columns, export_row, tax_of

TOKYO = ZoneInfo("Asia/Tokyo")
BASE_COLUMNS = [
    "order_id", "external_order_no", "channel", "created_at", "stage", "payment_method", "currency", "total",
    "shipping_fee", "payment_fee", "order_discount", "points_used",
]


def _day_start(value: str | None, *, days: int = 0) -> datetime | None:
    return datetime.combine(date.fromisoformat(value) + timedelta(days=days), time(), TOKYO) if value else None


def orders_csv(pool: Callable[[], asyncpg.Pool]):
    """GET /api/orders/export.csv?shop_id&created_from&created_to — UTF-8 CSV (with BOM, for spreadsheet programs);
    dates are Tokyo calendar days, both included."""

    async def endpoint(request: Request) -> Response:
        shop_id = query_text(request, "shop_id", required=True)
        try:
            created_from = _day_start(query_text(request, "created_from", max_length=10))
            created_to = _day_start(query_text(request, "created_to", max_length=10), days=1)
        except (ValueError, OverflowError) as error:
            return JSONResponse({"error": "invalid_query", "reason": f"dates are YYYY-MM-DD: {error}"}, status_code=400)
        async with pool().acquire() as conn:
            orders = await store_exports.orders_to_export(conn, shop_id, created_from, created_to)
        columns = export_columns({rate["rate_percent"] for order in orders for rate in tax_of(order["contents"])})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=BASE_COLUMNS + columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(export_row(order, columns) for order in orders)
        return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8")

    return endpoint
