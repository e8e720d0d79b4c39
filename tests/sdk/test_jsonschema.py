"""`j` builds JSON Schema that jsonschema accepts and that validates what it should."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator, ValidationError

from connections.exceptions import WorkerDefinitionError
from connections.sdk import Worker, j

pytestmark = pytest.mark.unit  # pure declarations and rules: no server, worker or database


def issue_schema() -> dict:
    return j.object(
        {
            "title": j.string("The issue title", min_length=1),
            "votes": j.integer(minimum=0).optional(),
            "weight": j.number("How heavy").describe("Relative weight"),
            "open": j.boolean(),
            "labels": j.array(j.string(), "Labels to add").optional(),
            "state": j.enum("open", "closed", description="Issue state"),
        },
        "An issue",
    )


def test_object_lists_required_fields_and_forbids_others():
    assert issue_schema() == {
        "type": "object",
        "description": "An issue",
        "properties": {
            "title": {"type": "string", "description": "The issue title", "minLength": 1},
            "votes": {"type": "integer", "minimum": 0},
            "weight": {"type": "number", "description": "Relative weight"},
            "open": {"type": "boolean"},
            "labels": {"type": "array", "items": {"type": "string"}, "description": "Labels to add"},
            "state": {"enum": ["open", "closed"], "description": "Issue state"},
        },
        "required": ["title", "weight", "open", "state"],
        "additionalProperties": False,
    }


def test_schema_is_valid_json_schema():
    Draft202012Validator.check_schema(issue_schema())


@pytest.mark.parametrize(
    "document",
    [
        {"title": "Bug", "weight": 1.5, "open": True, "state": "open"},
        {"title": "Bug", "weight": 1, "open": False, "state": "closed", "votes": 3, "labels": ["a", "b"]},
    ],
)
def test_valid_documents_pass(document):
    Draft202012Validator(issue_schema()).validate(document)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"weight": 1, "open": True, "state": "open"}, "title"),  # required missing
        ({"title": "", "weight": 1, "open": True, "state": "open"}, "title"),  # minLength
        ({"title": "x", "weight": 1, "open": True, "state": "merged"}, "state"),  # not in enum
        ({"title": "x", "weight": 1, "open": True, "state": "open", "labels": [1]}, "labels"),  # item type
        ({"title": "x", "weight": 1, "open": True, "state": "open", "votes": -1}, "votes"),  # minimum
        ({"title": "x", "weight": 1, "open": True, "state": "open", "extra": 1}, "extra"),  # no other keys
    ],
)
def test_invalid_documents_fail(document, path):
    errors = list(Draft202012Validator(issue_schema()).iter_errors(document))
    assert len(errors) == 1
    assert path in list(errors[0].absolute_path) or repr(path) in errors[0].message


def test_optional_keeps_description_and_describe_keeps_optional():
    node = j.object({"a": j.string("first").optional(), "b": j.string().optional().describe("second")})
    assert "required" not in node
    assert node["properties"] == {
        "a": {"type": "string", "description": "first"},
        "b": {"type": "string", "description": "second"},
    }


def test_enum_accepts_a_list_and_refuses_nothing():
    assert j.enum(["low", "high"]) == {"enum": ["low", "high"]}
    with pytest.raises(ValueError):
        j.enum()


def test_nullable_allows_null():
    node = j.object({"due": j.nullable(j.string(format="date"))})
    Draft202012Validator(node).validate({"due": None})
    Draft202012Validator(node).validate({"due": "2026-01-01"})
    with pytest.raises(ValidationError):
        Draft202012Validator(node).validate({"due": 3})


def test_empty_object_takes_no_input():
    node = j.object({})
    Draft202012Validator(node).validate({})
    with pytest.raises(ValidationError):
        Draft202012Validator(node).validate({"unexpected": 1})


def test_tool_refuses_an_invalid_schema_naming_worker_and_key():
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, search: schema is not a valid JSON Schema"):
        Worker("acme").tool("search", schema={"type": "strnig"})
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, search: output_schema must be a JSON Schema"):
        Worker("acme").tool("search", schema=j.object({}), output_schema=["not", "a", "schema"])
