"""`schema` declares and `builder` builds one value per Notion property type."""

from __future__ import annotations

import datetime as dt

import pytest

from connections.sdk import Worker, builder, schema
from connections.sdk.properties import PROPERTY_TYPES

pytestmark = pytest.mark.unit  # pure declarations and rules: no server, worker or database

# The property types the contract names; more may exist, none of these may be missing.
CONTRACT_TYPES = [
    "title",
    "rich_text",
    "number",
    "checkbox",
    "date",
    "url",
    "email",
    "phone_number",
    "select",
    "multi_select",
    "status",
    "people",
    "relation",
]


@pytest.mark.parametrize("kind", CONTRACT_TYPES)
def test_every_contract_type_has_a_schema_helper_a_database_accepts(kind):
    declaration = getattr(schema, kind)()
    assert declaration == {"type": kind}
    db = Worker("acme").database("db", primary_key="Name", properties={"Name": schema.title(), "P": declaration})
    assert db.properties["P"] == {"type": kind}


def test_schema_options_are_kept():
    assert schema.select(options=["a", "b"]) == {"type": "select", "options": ["a", "b"]}


def test_camel_case_spellings_of_the_typescript_sdk():
    assert schema.richText() == {"type": "rich_text"}
    assert schema.multiSelect() == {"type": "multi_select"}
    assert schema.phoneNumber() == {"type": "phone_number"}
    assert builder.richText("x") == builder.rich_text("x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (builder.title("Bug"), {"type": "title", "value": "Bug"}),
        (builder.rich_text(42), {"type": "rich_text", "value": "42"}),
        (builder.rich_text(None), {"type": "rich_text", "value": ""}),
        (builder.number(3.5), {"type": "number", "value": 3.5}),
        (builder.number(None), {"type": "number", "value": None}),
        (builder.checkbox(1), {"type": "checkbox", "value": True}),
        (
            builder.date(dt.date(2026, 11, 24), dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)),
            {"type": "date", "value": {"start": "2026-11-24", "end": "2026-11-25T09:30:00+00:00"}},
        ),
        (builder.date("2026-11-24"), {"type": "date", "value": {"start": "2026-11-24", "end": None}}),
        (builder.url("https://x.test"), {"type": "url", "value": "https://x.test"}),
        (builder.email("a@x.test"), {"type": "email", "value": "a@x.test"}),
        (builder.phone_number("+1 555"), {"type": "phone_number", "value": "+1 555"}),
        (builder.select("High"), {"type": "select", "value": "High"}),
        (builder.multi_select(["a", 2]), {"type": "multi_select", "value": ["a", "2"]}),
        (builder.status("Done"), {"type": "status", "value": "Done"}),
        (builder.people(["u1"]), {"type": "people", "value": ["u1"]}),
        (builder.relation([7, "8"]), {"type": "relation", "value": ["7", "8"]}),
    ],
)
def test_builder_values(value, expected):
    assert value == expected


def test_builder_covers_every_declared_type():
    for kind in PROPERTY_TYPES:
        assert callable(getattr(builder, kind)), kind


@pytest.mark.parametrize("bad", ["3", True])
def test_builder_number_refuses_non_numbers(bad):
    with pytest.raises(TypeError, match="builder.number"):
        builder.number(bad)
