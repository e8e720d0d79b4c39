"""The runner's pure rules as units: webhook signatures and sync pages, checked without a server or database.

The same rules are tested through HTTP and a real Celery worker in test_webhooks.py and test_syncs.py;
these run in milliseconds (`PYTEST_ARGS="-m unit"`) and name the exact rule that broke.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from connections.exceptions import InvalidSyncResult, WebhookVerificationError
from connections.runner.syncs import parse_page
from connections.runner.webhooks import check_signature, parse_body, signed_payload
from connections.sdk import Worker, builder, schema

pytestmark = pytest.mark.unit

SECRET = "whsec-unit-0123456789"
SIGNED = {"header": "X-Signature", "algorithm": "sha256", "prefix": "sha256="}
STAMPED = {**SIGNED, "timestamp_header": "X-Timestamp", "tolerance": 300}
NOW = 1_800_000_000.0


def sign(payload: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def test_a_body_signed_with_the_secret_passes():
    body = b'{"a": 1}'
    check_signature(SIGNED, SECRET, body, {"x-signature": sign(body)}, NOW)


def test_the_signature_header_may_be_respelled_in_case_and_spaces():
    body = b"{}"
    check_signature(SIGNED, SECRET, body, {"x-signature": "sha256= " + sign(body)[7:].upper()}, NOW)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing signature header X-Signature"),
        ({"x-signature": "md5=abc"}, "does not start with 'sha256='"),
        ({"x-signature": sign(b"other body")}, "signature does not match"),
        ({"x-signature": sign(b"{}", "wrong secret")}, "signature does not match"),
    ],
)
def test_bad_signatures_are_refused_naming_why(headers, reason):
    with pytest.raises(WebhookVerificationError, match=reason):
        check_signature(SIGNED, SECRET, b"{}", headers, NOW)


def test_a_timestamped_signature_covers_the_timestamp_and_the_body():
    body = b"{}"
    headers = {"x-timestamp": str(int(NOW))}
    payload = signed_payload(STAMPED, body, headers)
    assert payload == f"{int(NOW)}.".encode() + body
    check_signature(STAMPED, SECRET, body, {**headers, "x-signature": sign(payload)}, NOW)
    # The body's own signature is not enough: a replay could put any timestamp beside it.
    with pytest.raises(WebhookVerificationError, match="does not match"):
        check_signature(STAMPED, SECRET, body, {**headers, "x-signature": sign(body)}, NOW)


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        (NOW - 301, "outside the 300 s tolerance"),
        (NOW + 301, "outside the 300 s tolerance"),
        ("nan", "missing or invalid timestamp"),
        ("inf", "missing or invalid timestamp"),
        ("", "missing or invalid timestamp"),
    ],
)
def test_stale_future_and_non_finite_timestamps_are_refused(stamp, reason):
    headers = {"x-timestamp": str(stamp)}
    signature = sign(signed_payload(STAMPED, b"{}", headers))
    with pytest.raises(WebhookVerificationError, match=reason):
        check_signature(STAMPED, SECRET, b"{}", {**headers, "x-signature": signature}, NOW)


def test_a_timestamp_in_milliseconds_is_read_as_seconds():
    headers = {"x-timestamp": str(int(NOW * 1000))}
    check_signature(
        STAMPED, SECRET, b"{}", {**headers, "x-signature": sign(signed_payload(STAMPED, b"{}", headers))}, NOW
    )


def test_a_body_that_is_not_json_is_an_empty_dict():
    assert parse_body(b"") == {}
    assert parse_body(b"a=1&b=2") == {}
    assert parse_body(b'{"a": [1]}') == {"a": [1]}


# --- sync pages ----------------------------------------------------------------------------


def a_sync():
    worker = Worker("unit-pages")
    database = worker.database(
        "items", title="Items", primary_key="ID", properties={"Title": schema.title(), "ID": schema.rich_text()}
    )

    @worker.sync("itemsSync", database=database, schedule="manual")
    def items(state, context):  # never called: only its declaration is read
        return {}

    return worker.syncs["itemsSync"]


def upsert(key, **properties):
    return {"type": "upsert", "key": key, "properties": properties}


def test_a_page_splits_upserts_and_deletes_the_last_change_of_a_key_winning():
    page = parse_page(
        a_sync(),
        {
            "changes": [
                upsert("1", Title=builder.title("One")),
                {"type": "delete", "key": "2"},
                upsert(3, Title=builder.title("Three")),  # integer keys are text
                {"type": "delete", "key": "1"},
                upsert("2", Title=builder.title("Two again")),
            ],
            "hasMore": True,
            "nextState": {"cursor": 2},
        },
        1,
    )
    assert set(page.upserts) == {"2", "3"} and page.deletes == ["1"]
    assert page.has_more is True and page.next_state == {"cursor": 2}


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ([], "expected a dict with changes"),
        ({"changes": {}}, "changes must be a list"),
        ({"changes": [], "has_more": "yes"}, "has_more must be true or false"),
        ({"changes": [{"type": "move", "key": "1"}]}, "change 1: type must be 'upsert' or 'delete'"),
        ({"changes": [{"type": "delete", "key": ""}]}, "key must be a non-empty string"),
        ({"changes": [{"type": "delete", "key": True}]}, "key must be a non-empty string"),
        ({"changes": [{"type": "upsert", "key": "1", "properties": []}]}, "properties must be a dict"),
        ({"changes": [upsert("1", Colour=builder.title("x"))]}, "property 'Colour' is not declared"),
        ({"changes": [upsert("1", Title=builder.rich_text("x"))]}, r"property 'Title' is a title, got rich_text"),
    ],
)
def test_a_bad_page_is_refused_naming_the_change(result, reason):
    with pytest.raises(InvalidSyncResult, match=reason):
        parse_page(a_sync(), result, 1)


def nested(depth):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("change", "state", "key", "title"),
    [
        (upsert("k", Title=builder.title("bad \ud800 title")), None, "k", "bad \ufffd title"),
        (upsert("k", Title=builder.title("nul \x00 here")), None, "k", "nul \ufffd here"),
        (upsert("key-\udfff", Title=builder.title("fine")), None, "key-\ufffd", "fine"),
        (upsert("k", Title=builder.title("fine")), {"cursor": "\ud800"}, "k", "fine"),
        ({**upsert("k", Title=builder.title("fine")), "note": "\ud800"}, None, "k", "fine"),
        # Brackets inside text are not nesting: the page is taken as it is, whatever path checks it.
        (upsert("k", Title=builder.title("[" * 80 + "{" * 80)), None, "k", "[" * 80 + "{" * 80),
    ],
)
def test_a_page_with_bad_text_anywhere_is_stored_cleaned_with_the_digest_of_what_is_stored(change, state, key, title):
    from connections.runner.syncs import content_digest

    page = parse_page(a_sync(), {"changes": [change], "next_state": state}, 1)

    assert list(page.upserts) == [key] and page.upserts[key]["Title"]["value"] == title
    assert page.prepared[key][1] == content_digest(page.upserts[key])
    assert page.next_state == (None if state is None else {"cursor": "\ufffd"})


@pytest.mark.parametrize(
    "result",
    [
        {"changes": [upsert("k", Title={"type": "title", "value": nested(70)})]},
        {"changes": [{**upsert("k", Title=builder.title("x")), "note": nested(70)}]},
        {"changes": [upsert("k", Title=builder.title("x"))], "next_state": nested(70)},
    ],
)
def test_a_page_nested_too_deep_anywhere_is_refused(result):
    from connections.exceptions import InvalidJSONError

    with pytest.raises(InvalidJSONError, match="nested more than 64 levels deep"):
        parse_page(a_sync(), result, 1)


@pytest.mark.parametrize(
    "title",
    [
        {"type": "title", "value": "plain"},
        {"type": "title", "value": "é ü 😀 \u2028 \uffff \U00010000 \x7f"},
        {"type": "title", "value": 'quotes " and \\ and \n\t\b\f\r \x01\x1f'},
        {"type": "title", "value": "x", "z": [1, -2, 0.1, 1.5, -0.0, 12345678901234, True, None, {"b": 1, "a": 2}]},
        {"type": "title", "value": "x", "é": 1, "e": 2, "E": 3, "😀": 4, "": 5},
        {"type": "title", "value": "x", "huge": 2**70, "deep": [[[[{"k": "v"}]]]]},
    ],
)
def test_a_record_stored_by_an_earlier_version_keeps_its_digest(title):
    """Records stored before orjson made the canonical JSON (migration 0013 filled their digests with
    `json`) get the same digest again, so the first sync after the upgrade finds them unchanged."""
    import importlib

    from connections.runner.syncs import content_digest

    earlier = importlib.import_module("connections.migrations.0013_sync_digest")._digest
    page = parse_page(a_sync(), {"changes": [upsert("k", Title=title, ID=builder.rich_text("1"))]}, 1)

    assert page.prepared["k"][1] == content_digest(page.upserts["k"]) == earlier(page.upserts["k"])
    assert page.prepared["k"][0] == json.dumps(
        page.upserts["k"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_a_key_deleted_twice_then_upserted_is_kept():
    # A list of deletes took out only the first of the two, and the record was written then deleted.
    changes = [{"type": "delete", "key": "k"}, {"type": "delete", "key": "k"}, upsert("k", Title=builder.title("x"))]

    page = parse_page(a_sync(), {"changes": changes}, 1)

    assert page.deletes == [] and list(page.upserts) == ["k"]


def test_canonical_text_of_numbers_is_pinned():
    """The text a record's digest is made of: a change here (an orjson upgrade, an option) rewrites every
    record holding such a number once. Below 1e-4 it already differs from `json`'s (0.00001, 1e-05)."""
    from connections.jsondata import canonical_text

    values = [1e-05, 1.5e-07, 1e-4, 0.1, 1.5, -0.0, 1e16, 1e22, 12345678901234567890, float("nan")]

    assert canonical_text(values) == "[0.00001,1.5e-7,0.0001,0.1,1.5,-0.0,1e+16,1e+22,12345678901234567890,null]"
    # An integer beyond 64 bits, which orjson refuses, has the whole value written by `json`.
    assert canonical_text([*values, 2**70]) == (
        "[1e-05,1.5e-07,0.0001,0.1,1.5,-0.0,1e+16,1e+22,12345678901234567890,null,1180591620717411303424]"
    )


def test_deleting_and_upserting_the_same_keys_many_times_keeps_the_last_change_of_each():
    changes = [{"type": "delete", "key": str(i)} for i in range(3000)]
    changes += [upsert(str(i), Title=builder.title("back")) for i in range(0, 3000, 2)]
    changes += [{"type": "delete", "key": "0"}]

    page = parse_page(a_sync(), {"changes": changes}, 1)

    assert page.deletes == [*(str(i) for i in range(1, 3000, 2)), "0"]
    assert list(page.upserts) == [str(i) for i in range(2, 3000, 2)]
