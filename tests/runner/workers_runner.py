"""A test-only worker: tools, syncs and webhooks whose behaviour the runner tests can steer."""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path
from typing import Any

from connections.exceptions import RetryableError
from connections.sdk import Event, RunContext, Worker, builder, j, schema

logger = logging.getLogger("runner_test_worker")

worker = Worker("runner-test")


@worker.tool(
    "add",
    title="Add two numbers",
    schema=j.object({"a": j.integer("first"), "b": j.integer("second"), "note": j.string().optional()}),
    output_schema=j.object({"sum": j.integer()}),
)
def add(input: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("adding %s and %s", input["a"], input["b"])
    print("printed by the tool")
    return {"sum": input["a"] + input["b"]}


@worker.tool("boom", schema=j.object({}))
def boom(input: dict[str, Any], context: Any) -> Any:
    logger.warning("about to fail")
    raise ValueError("the tool broke on purpose")


@worker.tool("big", schema=j.object({"size": j.integer(minimum=1)}))
def big(input: dict[str, Any], context: Any) -> Any:
    return "x" * input["size"]


@worker.tool("leaky", schema=j.object({}))
def leaky(input: dict[str, Any], context: Any) -> Any:
    secret = worker.env("HOOK_SECRET").resolve()
    logger.info("calling with Authorization: Bearer %s", secret)
    raise RuntimeError(f"provider said no to secret {secret}")


@worker.tool("chatty", schema=j.object({}))
def chatty(input: dict[str, Any], context: Any) -> Any:
    """Logs a secret and a token in free text (no `key=` or `Bearer` around them), and a failure naming both."""
    from examples.sandbox import sandbox_auth

    secret = worker.env("HOOK_SECRET").resolve()
    token = sandbox_auth.access_token()
    logger.info("chatty says the secret is %s and the token is %s", secret, token)
    try:
        raise RuntimeError(f"chatty failed with {token}")
    except RuntimeError:
        logger.exception("chatty caught a failure")
    return {"ok": True}


@worker.tool("retryOnce", schema=j.object({}))
def retry_once(input: dict[str, Any], context: Any) -> Any:
    if context.attempt == 1:
        raise RetryableError("busy, come back later", retry_after=1)
    return {"attempt": context.attempt}


@worker.tool("throttled", schema=j.object({"key": j.string()}))
def throttled(input: dict[str, Any], context: Any) -> Any:
    """Calls the sandbox's rate-limited endpoint through the sandbox worker's OAuth capability."""
    from examples.sandbox import api, sandbox_auth

    response = sandbox_auth.session().get(api("flaky"), params={"key": input["key"]}, timeout=10)
    response.raise_for_status()
    return response.json()


@worker.tool("sleepy", schema=j.object({}), time_limit=2)
def sleepy(input: dict[str, Any], context: Any) -> Any:
    logger.info("going to sleep")
    time.sleep(3600)


@worker.tool("stubborn", schema=j.object({}), time_limit=2)
def stubborn(input: dict[str, Any], context: Any) -> Any:
    """Swallows its soft time limit (as `except Exception` does) and goes on: only the hard limit stops it."""
    while True:
        try:
            time.sleep(3600)
        except Exception as exc:
            logger.warning("ignoring %s", type(exc).__name__)


@worker.tool("hog", schema=j.object({}), time_limit=1)
def hog(input: dict[str, Any], context: Any) -> Any:
    """One C call that never lets go of the interpreter lock: no signal handler or thread of ours runs."""
    return sum(range(10**14))


@worker.tool("mark", schema=j.object({"name": j.string()}))
def mark(input: dict[str, Any], context: Any) -> Any:
    """Leaves `ran-<name>` in the GATE_DIR secret's folder: whether the run executed is seen from outside."""
    (Path(worker.env("GATE_DIR").resolve()) / f"ran-{input['name']}").write_text(str(context.run_id))
    return {"marked": input["name"]}


@worker.tool("lingering", schema=j.object({"name": j.string()}), time_limit=300)
def lingering(input: dict[str, Any], context: Any) -> Any:
    """Announces itself, then works in short steps for two minutes; `done-<name>` only if it got to the end."""
    folder = Path(worker.env("GATE_DIR").resolve())
    (folder / f"started-{input['name']}").write_text(str(os.getpid()))
    for _ in range(1200):
        time.sleep(0.1)
    (folder / f"done-{input['name']}").write_text("finished")
    return {"done": True}


@worker.tool("echo", schema=j.object({"payload": j.object({}, additional_properties=True)}))
def echo(input: dict[str, Any], context: Any) -> Any:
    return {"payload": input["payload"]}


@worker.tool("heap", schema=j.object({}))
def heap(input: dict[str, Any], context: Any) -> Any:
    """How many objects the garbage collector leaves out while the tool runs (runtime.settle_heap), and
    whether this worker code is among them (gc.get_objects lists every tracked object but frozen ones)."""
    return {"frozen": gc.get_freeze_count(), "code_frozen": not any(o is heap for o in gc.get_objects())}


@worker.tool("badText", schema=j.object({}))
def bad_text(input: dict[str, Any], context: Any) -> Any:
    """Text that is not valid Unicode wherever worker code can put it: the log, the result and its keys."""
    logger.info("logged \ud800 text")
    print("printed \udcff text")
    return {"text": "lone \ud800 surrogate", "\udc80key": ["\udfff"]}


@worker.tool("badError", schema=j.object({}))
def bad_error(input: dict[str, Any], context: Any) -> Any:
    raise ValueError("broke on \ud800 text")


@worker.tool("deep", schema=j.object({"depth": j.integer(minimum=1)}))
def deep(input: dict[str, Any], context: Any) -> Any:
    value: Any = []
    for _ in range(input["depth"]):
        value = [value]
    return value


items = worker.database(
    "items",
    title="Test items",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Status": schema.select()},
)
gated_items = worker.database(
    "gatedItems",
    title="Gated test items",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Status": schema.select()},
)
snapshot_items = worker.database(
    "snapshotItems",
    title="Snapshot test items",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Status": schema.select()},
)

PAGE = 10


def item_pages(state: dict[str, Any] | None, *, deletes: bool = True) -> dict[str, Any]:
    """Pages of the sandbox's items, read from its table, so every process sees the same data."""
    from sandbox.models import SandboxItem

    after = (state or {}).get("after", 0)
    rows = list(SandboxItem.objects.filter(id__gt=after).order_by("id")[: PAGE + 1])
    has_more = len(rows) > PAGE
    rows = rows[:PAGE]
    changes: list[dict[str, Any]] = []
    for item in rows:
        if item.deleted:
            if deletes:
                changes.append({"type": "delete", "key": str(item.id)})
            continue
        changes.append(
            {
                "type": "upsert",
                "key": str(item.id),
                "properties": {
                    "Title": builder.title(item.title),
                    "Item ID": builder.rich_text(str(item.id)),
                    "Status": builder.select(item.status),
                },
            }
        )
    page = (state or {}).get("page", 0) + 1
    next_state = {"after": rows[-1].id, "page": page} if has_more else None
    logger.info("page %s after %s: %s changes", page, after, len(changes))
    return {"changes": changes, "has_more": has_more, "next_state": next_state}


@worker.sync("pagesSync", database=items, schedule="manual")
def items_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    return item_pages(state)


def _gate(page: int) -> None:
    """With `armed-<page>` in the GATE_DIR secret's folder, announce the page and wait for `release-<page>`."""
    folder = Path(worker.env("GATE_DIR").resolve())
    if not (folder / f"armed-{page}").exists():
        return
    (folder / f"started-{page}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (folder / f"release-{page}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"page {page} was never released")
        time.sleep(0.05)


@worker.sync("gatedSync", database=gated_items, schedule="manual")
def gated_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    _gate((state or {}).get("page", 0) + 1)
    return item_pages(state)


@worker.sync("snapshotSync", database=snapshot_items, schedule="manual", mode="replace")
def snapshot_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    return item_pages(state, deletes=False)


hanging_items = worker.database(
    "hangingItems",
    title="Items of a sync whose page may hang",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Status": schema.select()},
)


@worker.sync("hangingSync", database=hanging_items, schedule="manual", time_limit=2)
def hanging_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """With `hang-<page>` in the GATE_DIR secret's folder, that page never returns (and ignores its soft limit
    when the file says `stubborn`)."""
    page = (state or {}).get("page", 0) + 1
    hang = Path(worker.env("GATE_DIR").resolve()) / f"hang-{page}"
    while hang.exists():
        try:
            time.sleep(3600)
        except Exception:
            if hang.read_text() != "stubborn":
                raise
    return item_pages(state)


@worker.sync("brokenSync", database=items, schedule="manual")
def broken_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    return {"changes": [{"type": "upsert", "key": "1", "properties": {"Colour": builder.title("red")}}]}


text_items = worker.database(
    "textItems",
    title="Text test items",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Score": schema.number()},
)


@worker.sync("badTextSync", database=text_items, schedule="manual")
def bad_text_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Lone surrogates in a record's key and properties and in next_state."""
    change = {
        "type": "upsert",
        "key": "key-\ud800",
        "properties": {"Title": builder.title("bad \ud800 title"), "Item ID": builder.rich_text("\udcff")},
    }
    return {"changes": [change], "has_more": False, "next_state": {"cursor": "\udfff"}}


# Numbers JSON writes in more than one way: NaN and the infinities (not JSON), exponents, integers
# beyond 64 bits, a float subclass (numpy's float64 is one). `mixed` adds a record with bad text to
# the page, so that the page is cleaned whole.
NUMBERS: dict[str, Any] = {"mixed": False}


class Float64(float):
    """A float subclass, as numpy's float64 is."""


@worker.sync("numbersSync", database=text_items, schedule="manual")
def numbers_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    values = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "big": 1e16,
        "small": 1.5e-7,
        "huge": 2**70,
        "half": 0.5,
        "float64 nan": Float64("nan"),
    }
    changes = [
        {"type": "upsert", "key": name, "properties": {"Title": builder.title(name), "Score": builder.number(value)}}
        for name, value in values.items()
    ]
    # An integer beyond 64 bits, which orjson refuses, beside NaN in one record: `json` writes it.
    changes[-1]["properties"]["Item ID"] = {"type": "rich_text", "value": "x", "id": 2**70}
    if NUMBERS["mixed"]:
        changes.append({"type": "upsert", "key": "bad", "properties": {"Title": builder.title("bad \ud800")}})
    return {"changes": changes, "has_more": False, "next_state": None}


# The state each page of stateSync was given, in order, and the states it returned; the run fails on page 3.
STATES_GIVEN: list[Any] = []
STATES_RETURNED: list[dict[str, Any]] = []


@worker.sync("stateSync", database=text_items, schedule="manual")
def state_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Two pages of two records, then a failure. Each next_state holds a tuple, and the code changes the
    states it returned before it reads the one it is given: neither may show in what a page gets."""
    for returned in STATES_RETURNED:
        returned["page"] = 99
    STATES_GIVEN.append(None if state is None else dict(state))
    page = (state or {}).get("page", 0) + 1
    if page == 3:
        raise RuntimeError("page 3 fails")
    changes = [
        {"type": "upsert", "key": f"state-{page}-{n}", "properties": {"Title": builder.title(f"{page}.{n}")}}
        for n in (1, 2)
    ]
    STATES_RETURNED.append({"page": page, "pair": (page, "x")})
    return {"changes": changes, "has_more": True, "next_state": STATES_RETURNED[-1]}


@worker.sync("deepSync", database=text_items, schedule="manual")
def deep_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    cursor: Any = {}
    for _ in range(5000):
        cursor = {"c": cursor}
    return {"changes": [], "has_more": False, "next_state": cursor}


@worker.webhook(
    "signed",
    signature={
        "secret": worker.env("HOOK_SECRET"),
        "header": "X-Signature",
        "algorithm": "sha256",
        "prefix": "sha256=",
        "timestamp_header": "X-Timestamp",
    },
)
def on_signed(event: Any, context: Any) -> Any:
    logger.info("handling %s", event.body.get("action"))
    return {"received": event.body, "method": event.method, "has_signature": "x-signature" in event.headers}


def require_token(event: Any) -> None:
    from connections.sdk import WebhookVerificationError

    if event.headers.get("x-token") != "let-me-in":
        raise WebhookVerificationError("missing or wrong X-Token")


@worker.webhook("checked", verify=require_token)
def on_checked(event: Any, context: Any) -> Any:
    return {"ok": True}


@worker.webhook("typedHook")
def on_typed(event: Event, context: RunContext) -> Any:
    # Worker code annotates its arguments with the SDK's types: they are what the runner passes.
    return {"event": type(event) is Event, "context": type(context) is RunContext}


@worker.tool("typedTool", schema=j.object({}))
def typed(input: dict[str, Any], context: RunContext) -> Any:
    return {"context": type(context) is RunContext, "kind": context.kind}


@worker.webhook(
    "signedPlain",
    signature={
        "secret": worker.env("HOOK_SECRET"),
        "header": "X-Signature",
        "algorithm": "sha256",
        "prefix": "sha256=",
    },
)
def on_signed_plain(event: Any, context: Any) -> Any:
    """Signed without a timestamp header: only the body is signed."""
    return {"received": event.body}


@worker.webhook("echoDeep")
def on_echo_deep(event: Any, context: Any) -> Any:
    """Returns a list nested as deep as the body asks: a handler's result goes through the same checks as a tool's."""
    value: Any = []
    for _ in range(int(event.body.get("depth", 1))):
        value = [value]
    return ["bad \ud800 text", value] if event.body.get("bad_text") else value


@worker.tool("nulText", schema=j.object({}))
def nul_text(input: dict[str, Any], context: Any) -> Any:
    """NUL is valid Unicode, but PostgreSQL stores it in neither text nor jsonb."""
    print("printed \x00 NUL")
    return {"text": "a \x00 NUL", "\x00key": 1}


def require_shared_token(event: Any) -> None:
    """As GitLab does: the sender puts a shared secret in a header, compared with the stored one."""
    from connections.sdk import WebhookVerificationError
    from connections.secrets import get_secret

    if event.headers.get("x-shared-token") != get_secret("runner-test", "HOOK_SECRET"):
        raise WebhookVerificationError("wrong X-Shared-Token")


@worker.webhook("sharedToken", verify=require_shared_token)
def on_shared_token(event: Any, context: Any) -> Any:
    return {"token_seen_by_handler": event.headers.get("x-shared-token")}


@worker.webhook("hangs")
def on_hangs(event: Any, context: Any) -> Any:
    logger.info("handler going to sleep")
    time.sleep(3600)
