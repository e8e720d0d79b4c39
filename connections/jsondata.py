"""JSON from outside (tool input, webhook bodies) and from worker code: bounded depth, valid Unicode.

A lone surrogate ("\\ud800") parses and stores fine but cannot be encoded as UTF-8, so every page,
log line and `dumpdata` that later renders it fails; deep nesting turns into a RecursionError in
whatever walks it next (jsonschema, templates, the JSON encoder). Both are caught at the door.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from .conf import app_settings
from .exceptions import InvalidJSONError

# Lone surrogates cannot be encoded as UTF-8; NUL cannot be stored by PostgreSQL (text or jsonb).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_is_bad(text: str) -> bool:
    """Whether `text` holds NUL or a lone surrogate (fast for ASCII)."""
    return "\x00" in text or (not text.isascii() and _bad_text(text))


def _any_problem(value: Any, max_depth: int) -> bool:
    """Whether `value` is too deep or holds bad text: `_walk` without its paths, for the common case.

    Sync pages pass here a thousand records at a time and nearly all are fine, so only containers
    go on the stack and no path is built; `_walk` then finds the problem and where it is.
    """
    if max_depth < 0:
        return True
    if isinstance(value, str):
        return text_is_bad(value)
    if not isinstance(value, (dict, list, tuple)):
        return False
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not item:
            continue
        depth += 1
        # Its children are one deeper than the container.
        if depth > max_depth:
            return True
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and ("\x00" in key or (not key.isascii() and _bad_text(key))):
                    return True
                if isinstance(child, str):
                    # text_is_bad inlined: this runs for every string of every record of a page.
                    if "\x00" in child or (not child.isascii() and _bad_text(child)):
                        return True
                elif isinstance(child, (dict, list, tuple)):
                    stack.append((child, depth))
        else:
            for child in item:
                if isinstance(child, str):
                    # text_is_bad inlined: this runs for every string of every record of a page.
                    if "\x00" in child or (not child.isascii() and _bad_text(child)):
                        return True
                elif isinstance(child, (dict, list, tuple)):
                    stack.append((child, depth))
    return False


# Sorted keys, no spaces, text as is: equal JSON gives equal text, whatever the order of its keys.
CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The same text from orjson, about six times faster (a sync serialises every record it is handed).
# Subclasses of text, numbers, dicts and lists go through `_as_json` as `json` reads them (a dict
# subclass by its items(), as `jsondata.clean` does); dates and dataclasses are refused as `json`
# refuses them. Where orjson refuses what `json` takes (integers beyond 64 bits, keys that are not
# text), `json` writes it. Both write NaN and the infinities as null, as JavaScript's
# JSON.stringify does (`json` alone writes NaN, which is not JSON: SQLite's check and PostgreSQL
# refuse it). Differences with `json`'s text, which change a stored record's digest once (it is
# rewritten by its next sync): numbers below 1e-4 in magnitude (0.00001 where `json` wrote 1e-05,
# 1.5e-7 for 1.5e-07); UUIDs and enums, which `json` refused, are their text and value.
_ORJSON_CANONICAL = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _as_json(value: Any) -> Any:
    """What orjson does not take itself, as `json` would write it (orjson's `default`)."""
    # The base type's own methods: a subclass's __str__ or __int__ may say something else.
    if isinstance(value, float):
        return float.__float__(value)  # numpy's float64, say: a NaN in it then becomes null too
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__int__(value)
    if isinstance(value, dict):
        return dict(value.items())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """`value` with NaN and the infinities as None, for `json` (its depth already checked)."""
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, dict):
        return {key: _finite(child) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(child) for child in value]
    return value


def _orjson_canonical(value: Any) -> bytes:
    """The canonical text's UTF-8 from orjson; TypeError for what orjson refuses."""
    return orjson.dumps(value, default=_as_json, option=_ORJSON_CANONICAL)


def canonical_text(value: Any) -> str:
    """`value` as canonical JSON: sorted keys, no spaces, text as is. Raises TypeError for what is not JSON.

    For a value `check` or `clean` has passed (bounded depth, valid text).
    """
    try:
        return _orjson_canonical(value).decode("utf-8")
    except TypeError:
        return CANONICAL.encode(_finite(value))


def is_plain(value: Any, max_depth: int) -> bool:
    """Whether `value` is at most `max_depth` deep (as `check` counts) and all its text is valid Unicode."""
    return not _any_problem(value, max_depth)


def canonical(value: Any, *, max_depth: int) -> tuple[str, bytes] | None:
    """`value` as canonical JSON (sorted keys, no spaces, text as is) and its UTF-8, when `is_plain`
    vouches for it from the text alone; None when it may be too deep or hold bad text.

    The fast path for what is serialised anyway (a sync's records): the encoder walks the value in C,
    lone surrogates fail the encoding, NUL is the escape `\\u0000`, and a value holding at most
    `max_depth` brackets cannot be nested deeper. None says nothing for sure (a string may hold a
    bracket, or orjson refused the value): `check` or `clean` then finds the problem, if any, and
    `canonical_text` makes the text.
    """
    try:
        encoded = _orjson_canonical(value)
    except TypeError:
        # Lone surrogates, too deep for orjson, or for `json` (canonical_text): the slow way decides.
        return None
    if b"\\u0000" in encoded or encoded.count(b"{") + encoded.count(b"[") > max_depth:
        return None
    return encoded.decode("utf-8"), encoded


def _walk(value: Any, max_depth: int) -> tuple[str, str] | None:
    """The worst problem in `value` as (kind, where), or None. Iterative: depth cannot overflow it.

    Too deep wins over bad text wherever each is, so that `clean` never recurses into a value
    deeper than the limit.
    """
    if not _any_problem(value, max_depth):
        return None
    bad_text: tuple[str, str] | None = None
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if depth > max_depth:
            return "depth", where
        if isinstance(item, str):
            if bad_text is None and _bad_text(item):
                bad_text = ("unicode", where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if bad_text is None and isinstance(key, str) and _bad_text(key):
                    bad_text = ("unicode", where)
                stack.append((child, depth + 1, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))
    return bad_text


def check(value: Any, *, what: str, max_depth: int | None = None) -> Any:
    """`value` when it is nested at most `JSON_MAX_DEPTH` deep and all its text is valid Unicode.

    Raises InvalidJSONError naming `what` (and the field, for bad text) otherwise.
    """
    limit = app_settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    problem = _walk(value, limit)
    if problem is None:
        return value
    kind, where = problem
    if kind == "depth":
        raise InvalidJSONError(f"{what} is nested more than {limit} levels deep.")
    field = f' (field "{where}")' if where else ""
    raise InvalidJSONError(f"{what} holds a NUL character or text that is not valid Unicode{field}.")


def loads(text: str | bytes, *, what: str, max_depth: int | None = None) -> Any:
    """Parse JSON from outside; InvalidJSONError (one line, naming `what`) for anything unsafe or malformed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJSONError(f"{what} is not valid UTF-8.") from None
    if _bad_text(text):
        raise InvalidJSONError(f"{what} holds a NUL character or text that is not valid Unicode.")
    try:
        value = json.loads(text)
    except RecursionError:
        limit = app_settings.JSON_MAX_DEPTH if max_depth is None else max_depth
        raise InvalidJSONError(f"{what} is nested more than {limit} levels deep.") from None
    except ValueError as exc:
        raise InvalidJSONError(f"{what} is not valid JSON: {exc}.") from None
    return check(value, what=what, max_depth=max_depth)


def clean(value: Any, *, what: str = "the value", max_depth: int | None = None) -> Any:
    """A copy of `value` that is safe to store and render: lone surrogates become U+FFFD.

    For what worker code returns, where refusing would lose the result. Too deep still raises
    InvalidJSONError naming `what`.
    """
    check_depth = app_settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    problem = _walk(value, check_depth)
    if problem is None:
        return value
    if problem[0] == "depth":
        raise InvalidJSONError(f"{what} is nested more than {check_depth} levels deep.")
    return _cleaned(value)


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_cleaned(k) if isinstance(k, str) else k: _cleaned(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cleaned(v) for v in value]
    return value


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced, for logs and messages."""
    return _UNSTORABLE.sub("\ufffd", text) if _bad_text(text) else text
