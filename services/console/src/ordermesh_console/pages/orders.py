"""The order list: filters, search, paging, every flag and pending dead letter at a glance, and CSV downloads of the
current filter."""

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from ordermesh_servicekit.http_input import query_date, query_int, query_text
from starlette.requests import Request
from starlette.responses import Response

from ..domain import csv_export, i18n
from ..domain.flags import FLAG_NAMES
from ..domain.formatting import local_time
from ..domain.roles import Permission
from .common import Refused, console_of, render, require
from .operations import pending_dead_letters_by_order

PAGE_SIZE = 50
FILTERS = ("q", "shop_id", "channel", "stage", "child_status", "payment_method", "flag", "flag_value", "open_task",
           "label", "created_from", "created_to")
CSV_PAGE = 1000
CSV_MAX_ORDERS = 100_000


def order_filters(request: Request) -> dict[str, str]:
    """The filter of the list from the query string (days are checked here, the rest by the orders service)."""
    filters = {}
    for name in FILTERS:
        value = (query_text(request, name, max_length=200) or "").strip()
        if value:
            filters[name] = value
    for name in ("created_from", "created_to"):
        if query_date(request, name) is None and name in filters:
            filters.pop(name)
    return filters


def api_filters(request: Request, filters: dict[str, str]) -> dict[str, str]:
    """The filter as the orders service takes it: days are the console's time zone's days."""
    return {**filters, "tz": console_of(request).timezone}


async def order_list(request: Request) -> Response:
    """GET /orders"""
    session = await require(request, Permission.VIEW)
    filters = order_filters(request)
    page = query_int(request, "page", default=1, minimum=1, maximum=1_000_000)
    answer, letters = await asyncio.gather(
        console_of(request).reader.orders_page(api_filters(request, filters), (page - 1) * PAGE_SIZE, PAGE_SIZE),
        pending_dead_letters_by_order(request),
    )
    total = answer["total"]
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request, "orders.html", session, orders=answer["orders"], total=total, page=page, pages=pages,
        filters=filters, query=urlencode(filters), flag_names=FLAG_NAMES,
        dead_letters=letters if isinstance(letters, Counter) else Counter(),
        stages=list(i18n.STAGES), payment_methods=list(i18n.PAYMENT_METHODS), channels=list(i18n.CHANNELS),
    )


CSV_COLUMNS = (
    ("受注番号", "external_order_no"), ("受注ID", "order_id"), ("ショップ", "shop_id"), ("チャネル", "channel"),
    ("受注日時", "created_at"), ("顧客ID", "customer_id"), ("顧客名", "customer_name"), ("支払方法", "payment_method"),
    ("合計", "total"), ("通貨", "currency"), ("ステータス", "stage"), ("子ステータス", "child_status"), ("モード", "mode"),
    ("未完了タスク", "open_tasks"), ("ラベル", "labels"),
)


async def order_csv(request: Request) -> Response:
    """GET /orders.csv?<filter>&encoding=utf-8|shift_jis — every order of the filter, with every flag."""
    await require(request, Permission.VIEW)
    console = console_of(request)
    encoding = query_text(request, "encoding", max_length=16) or "utf-8"
    if encoding not in csv_export.ENCODINGS:
        raise Refused(400, f"encoding must be one of {sorted(csv_export.ENCODINGS)}")
    filters = api_filters(request, order_filters(request))
    rows: list[dict[str, Any]] = []
    while True:
        answer = await console.reader.orders_page(filters, len(rows), CSV_PAGE)
        rows += answer["orders"]
        if len(answer["orders"]) < CSV_PAGE or len(rows) >= min(answer["total"], CSV_MAX_ORDERS):
            break
    language = "ja"
    flag_names = [n for n in FLAG_NAMES if any(n in r["flags"] for r in rows)]
    flag_names += sorted({n for r in rows for n in r["flags"]} - set(flag_names))
    header = [h for h, _ in CSV_COLUMNS] + [FLAG_NAMES.get(n, (n, n))[0] for n in flag_names]
    body = csv_export.encode_rows(
        header,
        (
            [_csv_value(row, key, console.timezone, language) for _, key in CSV_COLUMNS]
            + [row["flags"].get(n, "") for n in flag_names]
            for row in rows
        ),
        encoding,
    )
    charset = "utf-8" if encoding == "utf-8" else "Shift_JIS"
    return Response(
        body,
        media_type=f"text/csv; charset={charset}",
        headers={"Content-Disposition": f'attachment; filename="orders-{encoding}.csv"'},
    )


def _csv_value(row: dict[str, Any], key: str, zone: str, language: str) -> Any:
    value = row.get(key)
    if key == "created_at":
        return local_time(value, zone, seconds=True)
    if key == "labels":
        return " ".join(value or [])
    if key == "stage":
        return i18n.label(i18n.STAGES, value, language)
    if key == "payment_method":
        return i18n.label(i18n.PAYMENT_METHODS, value, language)
    if key == "channel":
        return i18n.label(i18n.CHANNELS, value, language)
    return value
