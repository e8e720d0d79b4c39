"""Worker definitions: mistakes fail at import with a message naming the worker and the key."""

from __future__ import annotations

from typing import Any

import pytest

from connections.exceptions import WorkerDefinitionError
from connections.sdk import SecretRef, Worker, j, schema
from connections.sdk.worker import parse_schedule

pytestmark = pytest.mark.unit  # pure declarations and rules: no server, worker or database


def oauth_options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": "acme-oauth",
        "authorization_endpoint": "https://acme.example/authorize",
        "token_endpoint": "https://acme.example/token",
        "scope": "read",
        "client_id": "client-id",
        "client_secret": "client-secret",
    }
    options.update(overrides)
    return {k: v for k, v in options.items() if v is not None}


def noop(*args: Any) -> None:
    return None


def test_a_valid_definition_records_every_option():
    worker = Worker("acme")
    auth = worker.oauth(
        "acmeAuth",
        **oauth_options(
            client_id=worker.env("ACME_ID"),
            client_secret=worker.env("ACME_SECRET"),
            authorization_params={"prompt": "consent"},
            access_token_expire_ms=60_000,
        ),
    )
    assert auth.name == "acme-oauth"
    assert auth.client_id == SecretRef("acme", "ACME_ID")
    assert auth.authorization_params == {"prompt": "consent"}
    assert auth.access_token_expire_ms == 60_000
    assert worker.capabilities == {"acmeAuth": auth}


def test_secret_reference_never_shows_a_value():
    ref = Worker("acme").env("ACME_SECRET")
    assert str(ref) == "<secret ACME_SECRET>"


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        (lambda w: w.oauth("thing", **oauth_options(name="other")), "OAuth capability"),
        (lambda w: w.tool("thing", schema=j.object({}))(noop), "tool"),
        (lambda w: w.webhook("thing")(noop), "webhook"),
    ],
)
def test_duplicate_key_names_worker_and_key(second, kind):
    worker = Worker("acme")
    worker.tool("thing", schema=j.object({}))(noop)
    with pytest.raises(WorkerDefinitionError) as exc:
        second(worker)
    message = str(exc.value)
    assert "Worker acme" in message
    assert "thing" in message
    assert "duplicate key" in message


def test_duplicate_oauth_name_is_refused():
    worker = Worker("acme")
    worker.oauth("one", **oauth_options())
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, two: duplicate OAuth name 'acme-oauth'"):
        worker.oauth("two", **oauth_options())


@pytest.mark.parametrize("option", ["name", "authorization_endpoint", "token_endpoint", "scope", "client_id"])
def test_missing_required_oauth_option_is_named(option):
    worker = Worker("acme")
    with pytest.raises(WorkerDefinitionError) as exc:
        worker.oauth("acmeAuth", **oauth_options(**{option: None}))
    message = str(exc.value)
    assert message.startswith("Worker acme, acmeAuth:")
    assert f"missing required option(s): {option}" in message
    assert worker.capabilities == {}


def test_tool_without_schema_is_refused():
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, search: missing required option: schema"):
        Worker("acme").tool("search", title="Search")


@pytest.mark.parametrize(
    "url",
    ["ftp://acme.example/token", "javascript:alert(1)", "acme.example/token", "/relative/token", "https://"],
)
@pytest.mark.parametrize("option", ["authorization_endpoint", "token_endpoint", "revocation_endpoint"])
def test_endpoint_must_be_an_http_url(option, url):
    with pytest.raises(WorkerDefinitionError) as exc:
        Worker("acme").oauth("acmeAuth", **oauth_options(**{option: url}))
    assert str(exc.value).startswith("Worker acme, acmeAuth:")
    assert f"{option} {url!r} is not an http(s) URL" in str(exc.value)


def test_unknown_provider_preset_is_named():
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, acmeAuth: unknown provider preset 'gitlub'"):
        Worker("acme").oauth("acmeAuth", name="x", provider="gitlub", scope="read", client_id="a", client_secret="b")


def test_provider_preset_fills_endpoints_and_params_that_code_can_override():
    worker = Worker("acme")
    auth = worker.oauth(
        "g",
        name="google",
        provider="google",
        scope="email",
        client_id=worker.env("G_ID"),
        client_secret=worker.env("G_SECRET"),
        authorization_params={"prompt": "select_account"},
    )
    assert auth.authorization_endpoint == "https://accounts.google.com/o/oauth2/v2/auth"
    assert auth.token_endpoint == "https://oauth2.googleapis.com/token"
    assert auth.authorization_params == {"access_type": "offline", "prompt": "select_account"}


def test_unknown_property_type_names_worker_database_and_property():
    with pytest.raises(WorkerDefinitionError) as exc:
        Worker("acme").database(
            "tasks", primary_key="Name", properties={"Name": schema.title(), "Due": schema.formula()}
        )
    message = str(exc.value)
    assert message.startswith("Worker acme, tasks:")
    assert "property 'Due' has unknown type 'formula'" in message


def test_primary_key_must_be_a_property():
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, tasks: primary_key 'ID' is not one of"):
        Worker("acme").database("tasks", primary_key="ID", properties={"Name": schema.title()})


@pytest.mark.parametrize(
    "schedule", ["5s", "0m", "8d", "10080m1", "every hour", "61 * * * *", "0 25 * * *", "* * * *", ""]
)
def test_bad_schedule_names_worker_and_sync(schedule):
    worker = Worker("acme")
    db = worker.database("items", primary_key="Name", properties={"Name": schema.title()})
    with pytest.raises(WorkerDefinitionError) as exc:
        worker.sync("itemsSync", database=db, schedule=schedule)
    assert str(exc.value).startswith("Worker acme, itemsSync: schedule")
    assert worker.syncs == {}


@pytest.mark.parametrize(
    ("schedule", "parsed"),
    [
        ("continuous", ("continuous", None)),
        ("manual", ("manual", None)),
        ("1m", ("interval", 1)),
        ("15m", ("interval", 15)),
        ("1h", ("interval", 60)),
        ("7d", ("interval", 7 * 1440)),
        ("*/5  9-17 * * 1-5", ("cron", "*/5 9-17 * * 1-5")),
    ],
)
def test_good_schedules_parse(schedule, parsed):
    assert parse_schedule(schedule) == parsed


def test_sync_mode_and_database_are_checked():
    worker = Worker("acme")
    other = Worker("other").database("items", primary_key="Name", properties={"Name": schema.title()})
    db = worker.database("items", primary_key="Name", properties={"Name": schema.title()})
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, s1: mode must be 'incremental' or 'replace'"):
        worker.sync("s1", database=db, mode="append")
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, s2: database must be a database declared by"):
        worker.sync("s2", database=other)


def test_webhook_signature_secret_must_be_a_stored_secret():
    worker = Worker("acme")
    with pytest.raises(WorkerDefinitionError, match=r"Worker acme, events: signature\['secret'\] must be"):
        worker.webhook("events", signature={"secret": "plain-text-in-code"})
    worker.webhook("hooks", signature={"secret": worker.env("HOOK_SECRET"), "header": "X-Sig"})(noop)
    assert worker.webhooks["hooks"].signature["secret"] == "HOOK_SECRET"


@pytest.mark.parametrize("slug", ["", "Acme", "acme_x", "-acme", "a" * 101])
def test_bad_worker_slug(slug):
    with pytest.raises(WorkerDefinitionError, match="Worker slug"):
        Worker(slug)


def test_bad_key_and_secret_name():
    worker = Worker("acme")
    with pytest.raises(WorkerDefinitionError, match="Worker acme, 1tool: tool key must start with a letter"):
        worker.tool("1tool", schema=j.object({}))
    with pytest.raises(WorkerDefinitionError, match="Worker acme: secret name 'MY-SECRET'"):
        worker.env("MY-SECRET")


@pytest.mark.parametrize("value", [0, -1, True, "30", 24 * 3600 + 1])
def test_a_bad_time_limit_names_worker_and_key(value):
    worker = Worker("acme")
    db = worker.database("rows", primary_key="Name", properties={"Name": schema.title()})
    with pytest.raises(WorkerDefinitionError, match=r"^Worker acme, slow: time_limit must be a number of seconds"):
        worker.tool("slow", schema=j.object({}), time_limit=value)
    with pytest.raises(WorkerDefinitionError, match=r"^Worker acme, rowsSync: time_limit must be a number of seconds"):
        worker.sync("rowsSync", database=db, time_limit=value)


def test_a_time_limit_is_kept_with_the_definition():
    worker = Worker("acme")
    db = worker.database("rows", primary_key="Name", properties={"Name": schema.title()})
    worker.tool("slow", schema=j.object({}), time_limit=30)(noop)
    worker.sync("rowsSync", database=db, time_limit=2.5)(noop)
    assert worker.tools["slow"].time_limit == 30 and worker.syncs["rowsSync"].time_limit == 2.5
    worker.tool("quick", schema=j.object({}))(noop)
    assert worker.tools["quick"].time_limit is None  # WORKERS_TOOL_TIME_LIMIT applies
