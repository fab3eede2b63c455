"""Reading untrusted HTTP input (servicekit.http_input) and the endpoint wrapper's answers, without a server."""

import json

import asyncpg
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import JSONResponse

from ordermesh_servicekit.http import asgi_endpoint, staff_endpoint
from ordermesh_servicekit.http_input import (
    MAX_JSON_DEPTH,
    HttpRefusal,
    limit_body,
    parse_json,
    parse_json_object,
    query_int,
    query_text,
    query_uuid,
)
from ordermesh_servicekit.signing import sign, verify_signature


def _request(query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": headers or []})


def _refusal(call) -> HttpRefusal:
    with pytest.raises(HttpRefusal) as refused:
        call()
    return refused.value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_decoded_or_refused_with_a_400_never_anything_else(body):
    try:
        parse_json(body)
    except HttpRefusal as refusal:
        assert refusal.status == 400 and refusal.reason


json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_trees)
def test_any_json_comes_back_equal_unless_it_holds_nul_or_lone_surrogates(tree):
    body = json.dumps(tree).encode()
    text = json.dumps(tree, ensure_ascii=False)
    poisoned = "\\u0000" in body.decode() or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    try:
        assert parse_json(body) == tree and not poisoned
    except HttpRefusal as refusal:
        assert poisoned and refusal.status == 400


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        (b"9" * 5000, "not JSON"),
        (b"1e400", "too large"),
        (b"[NaN]", "not JSON"),
        (b'{"a": -Infinity}', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),
        (b'{"shop": "a\\u0000b"}', "NUL"),
        (b'{"a\\u0000": 1}', "NUL"),
        (b'["\\ud800"]', "lone surrogates"),
        (b"", "not JSON"),
    ],
)
def test_hostile_bodies_are_refused_with_a_reason(body, reason):
    refusal = _refusal(lambda: parse_json(body))
    assert refusal.status == 400 and reason in refusal.reason


def test_nesting_up_to_the_limit_is_accepted_and_non_objects_are_refused_where_an_object_is_needed():
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    for body in (b"[]", b"1", b'"x"', b"null", b"true"):
        assert "must be a JSON object" in _refusal(lambda: parse_json_object(body)).reason


@pytest.mark.parametrize(
    "query, reason",
    [
        (b"limit=-1", "between 1 and 1000"),
        (b"limit=99999999999999999999999", "whole number"),
        (b"limit=%C2%B2", "whole number"),
        (b"limit=1&limit=2", "given 2 times"),
        (b"limit=1.5", "whole number"),
    ],
)
def test_absurd_numbers_in_the_query_are_refused(query, reason):
    refusal = _refusal(lambda: query_int(_request(query), "limit", default=100, minimum=1, maximum=1000))
    assert refusal.status == 400 and reason in refusal.reason


def test_text_and_uuid_parameters_refuse_nul_overlong_duplicate_and_malformed_values():
    assert "NUL" in _refusal(lambda: query_text(_request(b"shop_id=a%00b"), "shop_id")).reason
    assert "exceed" in _refusal(lambda: query_text(_request(b"shop_id=" + b"x" * 300), "shop_id")).reason
    assert "required" in _refusal(lambda: query_text(_request(b""), "shop_id", required=True)).reason
    assert "UUID" in _refusal(lambda: query_uuid(_request(b"order_id=nope"), "order_id")).reason
    assert query_text(_request(b"shop_id=%E4%BA%AC"), "shop_id") == "京"
    assert query_int(_request(b""), "limit", default=100, minimum=1, maximum=1000) == 100


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_signature_header_is_checked_without_raising(header):
    assert verify_signature("secret", b"{}", header, now=1_700_000_000) is False


@pytest.mark.parametrize("header", ["t=²,v1=00", "t=٣,v1=00", "t=" + "9" * 5000 + ",v1=00", "t=1,t=1,v1=00", "v1=00", ","])
def test_malformed_signature_headers_are_simply_not_valid(header):
    assert verify_signature("secret", b"{}", header, now=1) is False


def test_a_fresh_signature_still_verifies():
    assert verify_signature("secret", b"{}", sign("secret", b"{}", 1_700_000_000), now=1_700_000_010)


async def _call(app, method: str = "GET", content: bytes | None = None, headers: dict | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.request(method, "/", content=content, headers=headers)


async def _echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"length": len(await request.body())})


async def test_a_body_over_the_limit_gets_413_whether_declared_or_streamed():
    app = limit_body(asgi_endpoint(_echo_length, methods=("POST",)), 1024)
    assert (await _call(app, "POST", b"x" * 1024)).json() == {"length": 1024}
    declared = await _call(app, "POST", b"x" * 1025)
    assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"

    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        streamed = await client.post("/", content=chunks())
    assert streamed.status_code == 413 and streamed.json()["limit"] == 1024


async def test_the_wrapper_answers_wrong_methods_405_and_failures_with_a_reasoned_status():
    async def failing(error: Exception):
        async def endpoint(_request: Request):
            raise error

        return await _call(asgi_endpoint(endpoint, methods=("GET",)))

    wrong = await _call(asgi_endpoint(_echo_length, methods=("POST",)), "DELETE")
    assert (wrong.status_code, wrong.headers["allow"], wrong.json()["error"]) == (405, "POST", "method_not_allowed")
    refused = await failing(asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"))
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_input")
    unavailable = await failing(asyncpg.CannotConnectNowError("the database system is starting up"))
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "5")
    bug = await failing(KeyError("x"))
    assert (bug.status_code, bug.json()["error"]) == (500, "internal_error")


@pytest.mark.parametrize(
    "authorization, status", [(None, 401), ("tok", 401), ("Basic tok", 401), ("Bearer", 401), ("Bearer nope", 401),
                              ("Bearer tok", 200), ("bearer tok", 200)]
)
async def test_staff_endpoints_take_only_the_bearer_scheme(authorization, status):
    app = staff_endpoint("tok", _echo_length)
    answer = await _call(app, headers={"Authorization": authorization} if authorization else None)
    assert answer.status_code == status
    if status == 401:
        assert answer.json()["error"] == "unauthorized" and answer.json()["reason"]
