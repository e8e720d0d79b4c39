"""`Worker` and the definitions it collects: OAuth capabilities, tools, databases, syncs, webhooks."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..exceptions import WorkerDefinitionError
from ..runtime import local_mode, oauth_env_name, pulled_token  # noqa: F401 (local_mode, oauth_env_name: their old home)
from .jsonschema import schema_error
from .properties import PROPERTY_TYPES

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_SCHEDULE = re.compile(r"^(\d+)([mhd])$")


@dataclass(frozen=True)
class SecretRef:
    """`worker.env("NAME")`: a stored secret, resolved when used, so no redeploy is needed."""

    worker: str
    name: str

    def __str__(self) -> str:  # never the value: it is not known here
        return f"<secret {self.name}>"

    def resolve(self) -> str:
        from ..secrets import get_secret

        return get_secret(self.worker, self.name)


@dataclass
class OAuthCapability:
    """What `worker.oauth(...)` returns; call `.access_token()` from tools, syncs and webhooks."""

    worker: str
    key: str
    name: str
    authorization_endpoint: str
    token_endpoint: str
    scope: str
    client_id: str | SecretRef
    client_secret: str | SecretRef
    authorization_params: dict[str, str] = field(default_factory=dict)
    access_token_expire_ms: int | None = None
    provider: str = ""
    revocation_endpoint: str = ""
    pkce: bool = True

    def access_token(self) -> str:
        """A valid access token, refreshed first when it is about to expire."""
        pulled = pulled_token(self.name)
        if pulled:
            from ..logging import remember

            remember(pulled)  # stored tokens are remembered by their field; this one never was
            return pulled
        from ..oauth.tokens import access_token

        return access_token(self.worker, self.key)

    accessToken = access_token

    def session(self, pacer: Pacer | None = None) -> Any:
        """A requests session that sends the bearer token and, on a 401, refreshes once and retries once.

        With `pacer=`, every request through it waits its turn in that pacer's budget.
        """
        from ..oauth.session import AuthorizedSession

        return AuthorizedSession(self, pacer=pacer)

    def token_extra(self) -> dict[str, Any]:
        """The rest of the provider's token response (e.g. Salesforce's instance_url)."""
        from ..oauth.tokens import token_extra

        return token_extra(self.worker, self.key)


@dataclass(frozen=True)
class Pacer:
    """What `worker.pacer(...)` returns: call `.wait()` before each request to the API it guards.

    Every process and machine of the site shares one budget per pacer (connections/pacers.py):
    requests are spaced evenly, served in the order they asked, and a 429 pauses them all.
    """

    worker: str
    key: str
    allowed_requests: int
    interval_ms: int

    def wait(self, timeout: float | None = None) -> float:
        """Block until this request may go; returns the seconds waited. PacerTimeout past `timeout`."""
        from ..pacers import wait

        return wait(self, timeout=timeout)

    def try_acquire(self) -> bool:
        """Take a slot only if one is free now; never blocks."""
        from ..pacers import try_acquire

        return try_acquire(self)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this pacer for `seconds` (what a 429's Retry-After asks for)."""
        from ..pacers import pause

        pause(self, seconds)

    def session(self) -> Any:
        """A requests session whose every request waits its turn and pauses the pacer on a 429."""
        from ..pacers import PacedSession

        return PacedSession(self)

    tryAcquire = try_acquire


@dataclass
class ToolDef:
    worker: str
    key: str
    func: Callable[[Any, Any], Any]
    title: str
    description: str
    schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    hints: dict[str, Any]
    time_limit: float | None = None  # seconds; None: WORKERS_TOOL_TIME_LIMIT


@dataclass
class DatabaseDef:
    worker: str
    key: str
    title: str
    primary_key: str
    properties: dict[str, dict[str, Any]]


@dataclass
class SyncDef:
    worker: str
    key: str
    func: Callable[[Any, Any], Any]
    database: DatabaseDef
    schedule: str
    mode: str
    time_limit: float | None = None  # seconds per page; None: WORKERS_SYNC_PAGE_TIME_LIMIT


@dataclass
class WebhookDef:
    worker: str
    key: str
    func: Callable[[Any, Any], Any]
    signature: dict[str, Any] | None
    verify: Callable[[Any], Any] | None


def parse_schedule(schedule: str) -> tuple[str, int | str | None]:
    """("continuous", None), ("manual", None), ("interval", minutes) or ("cron", line)."""
    value = schedule.strip()
    if value in ("continuous", "manual"):
        return value, None
    match = _SCHEDULE.match(value)
    if match:
        minutes = int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[match.group(2)]
        if not 1 <= minutes <= 7 * 1440:
            raise ValueError(f"schedule {schedule!r} is outside 1 minute to 7 days")
        return "interval", minutes
    if len(value.split()) == 5:
        from celery.schedules import crontab

        minute, hour, day_of_month, month_of_year, day_of_week = value.split()
        try:
            # Parsed here so a typo fails at import, not when beat first loads the entry.
            crontab(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
            )
        except ValueError as exc:
            raise ValueError(
                f"schedule {schedule!r} is not a valid cron line (minute hour day-of-month month day-of-week): {exc}"
            ) from None
        return "cron", " ".join(value.split())
    raise ValueError(f"schedule {schedule!r} is not 'continuous', 'manual', '<n>m', '<n>h', '<n>d' or a cron line")


class Worker:
    """A worker: `Worker("github")`, then `.oauth()`, `.tool()`, `.database()`, `.sync()`, `.webhook()`."""

    def __init__(self, slug: str) -> None:
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise WorkerDefinitionError(
                f"Worker slug {slug!r} must be lower-case letters, digits and dashes (at most 100)."
            )
        self.slug = slug
        self.module = ""
        # Set by the registry when it imports the module: a hash of the source files this process runs.
        self.code_fingerprint = ""
        self.capabilities: dict[str, OAuthCapability] = {}
        self.tools: dict[str, ToolDef] = {}
        self.databases: dict[str, DatabaseDef] = {}
        self.syncs: dict[str, SyncDef] = {}
        self.webhooks: dict[str, WebhookDef] = {}
        self.pacers: dict[str, Pacer] = {}

    def __repr__(self) -> str:
        return f"<Worker {self.slug}>"

    def _fail(self, key: str, message: str) -> WorkerDefinitionError:
        return WorkerDefinitionError(f"Worker {self.slug}, {key}: {message}")

    def _check_key(self, key: str, kind: str) -> None:
        if not isinstance(key, str) or not _KEY.match(key):
            raise self._fail(str(key), f"{kind} key must start with a letter and use letters, digits, _ or -")
        taken = {**self.capabilities, **self.tools, **self.databases, **self.syncs, **self.webhooks}
        if key in taken:
            raise self._fail(key, f"duplicate key: {key} is already declared in this worker")

    def env(self, name: str) -> SecretRef:
        """A reference to the stored secret `name`, read when it is used."""
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise WorkerDefinitionError(f"Worker {self.slug}: secret name {name!r} is not a valid variable name")
        return SecretRef(self.slug, name)

    def oauth(
        self,
        key: str,
        *,
        name: str | None = None,
        authorization_endpoint: str | None = None,
        token_endpoint: str | None = None,
        scope: str | None = None,
        client_id: str | SecretRef | None = None,
        client_secret: str | SecretRef | None = None,
        authorization_params: dict[str, str] | None = None,
        access_token_expire_ms: int | None = None,
        provider: str | None = None,
        revocation_endpoint: str | None = None,
        pkce: bool | None = None,
    ) -> OAuthCapability:
        """Declare an OAuth capability; a `provider` preset fills in endpoints and quirks."""
        from ..oauth.providers import get_provider

        self._check_key(key, "OAuth capability")
        preset = None
        if provider:
            preset = get_provider(provider)
            if preset is None:
                raise self._fail(key, f"unknown provider preset {provider!r}")
        missing = [
            option
            for option, value in (
                ("name", name),
                ("authorization_endpoint", authorization_endpoint or (preset and preset.authorization_endpoint)),
                ("token_endpoint", token_endpoint or (preset and preset.token_endpoint)),
                ("scope", scope),
                ("client_id", client_id),
                ("client_secret", client_secret),
            )
            if value is None or value == ""
        ]
        if missing:
            raise self._fail(key, f"missing required option(s): {', '.join(missing)}")
        for option, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, (str, SecretRef)):
                raise self._fail(key, f"{option} must be a string or worker.env('NAME')")
        if any(cap.name == name for cap in self.capabilities.values()):
            raise self._fail(key, f"duplicate OAuth name {name!r}")
        params = dict(preset.authorization_params if preset else {})
        params.update(authorization_params or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise self._fail(key, "authorization_params must map strings to strings")
        if access_token_expire_ms is not None and (
            not isinstance(access_token_expire_ms, int) or access_token_expire_ms <= 0
        ):
            raise self._fail(key, "access_token_expire_ms must be a positive integer")
        capability = OAuthCapability(
            worker=self.slug,
            key=key,
            name=str(name),
            authorization_endpoint=authorization_endpoint or preset.authorization_endpoint,
            token_endpoint=token_endpoint or preset.token_endpoint,
            scope=str(scope),
            client_id=client_id,
            client_secret=client_secret,
            authorization_params=params,
            access_token_expire_ms=access_token_expire_ms
            if access_token_expire_ms is not None
            else (preset.access_token_expire_ms if preset else None),
            provider=provider or "",
            revocation_endpoint=revocation_endpoint or (preset.revocation_endpoint if preset else ""),
            pkce=pkce if pkce is not None else (preset.pkce if preset else True),
        )
        for option in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
            url = getattr(capability, option)
            # Site-relative endpoints come only from the sandbox preset; deploy makes them absolute.
            site_relative = preset is not None and preset.site_relative and url.startswith("/")
            if url and not site_relative and not _is_http_url(url):
                raise self._fail(key, f"{option} {url!r} is not an http(s) URL")
        self.capabilities[key] = capability
        return capability

    def tool(
        self,
        key: str,
        *,
        title: str = "",
        description: str = "",
        schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        hints: dict[str, Any] | None = None,
        time_limit: float | None = None,
    ) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
        """Decorator: `@worker.tool("key", title=..., description=..., schema=j.object({...}))`.

        `time_limit`: seconds the tool may run (default WORKERS_TOOL_TIME_LIMIT); past it the tool
        is stopped with an error, and killed WORKERS_TIME_LIMIT_GRACE seconds later if it goes on.
        """
        self._check_key(key, "tool")
        _check_time_limit(self, key, time_limit)
        if schema is None:
            raise self._fail(key, "missing required option: schema (use j.object({}) for no input)")
        for option, value in (("schema", schema), ("output_schema", output_schema)):
            if value is not None:
                _check_json_schema(self, key, option, value)

        def register(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            self.tools[key] = ToolDef(
                self.slug,
                key,
                func,
                title or key,
                description,
                dict(schema),
                dict(output_schema) if output_schema is not None else None,
                dict(hints or {}),
                time_limit,
            )
            return func

        return register

    def database(
        self, key: str, *, title: str = "", primary_key: str, properties: dict[str, dict[str, Any]]
    ) -> DatabaseDef:
        """Declare a database that syncs fill; every property needs a known type."""
        self._check_key(key, "database")
        if not properties:
            raise self._fail(key, "a database needs at least one property")
        for prop, declaration in properties.items():
            kind = declaration.get("type") if isinstance(declaration, dict) else None
            if kind not in PROPERTY_TYPES:
                raise self._fail(
                    key, f"property {prop!r} has unknown type {kind!r}; known types: {', '.join(PROPERTY_TYPES)}"
                )
        if primary_key not in properties:
            raise self._fail(key, f"primary_key {primary_key!r} is not one of its properties")
        database = DatabaseDef(self.slug, key, title or key, primary_key, {k: dict(v) for k, v in properties.items()})
        self.databases[key] = database
        return database

    def sync(
        self,
        key: str,
        *,
        database: DatabaseDef,
        schedule: str = "continuous",
        mode: str = "incremental",
        time_limit: float | None = None,
    ) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
        """Decorator: `@worker.sync("key", database=db, schedule="15m", mode="incremental")`.

        `time_limit`: seconds one page may take (default WORKERS_SYNC_PAGE_TIME_LIMIT); a page past
        it fails the run, which releases the sync so the next run resumes at that page.
        """
        self._check_key(key, "sync")
        _check_time_limit(self, key, time_limit)
        if not isinstance(database, DatabaseDef) or database.worker != self.slug:
            raise self._fail(key, "database must be a database declared by this worker")
        if mode not in ("incremental", "replace"):
            raise self._fail(key, f"mode must be 'incremental' or 'replace', not {mode!r}")
        try:
            parse_schedule(schedule)
        except ValueError as exc:
            raise self._fail(key, str(exc)) from None

        def register(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            self.syncs[key] = SyncDef(self.slug, key, func, database, schedule.strip(), mode, time_limit)
            return func

        return register

    def webhook(
        self, key: str, *, signature: dict[str, Any] | None = None, verify: Callable[[Any], Any] | None = None
    ) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
        """Decorator: `@worker.webhook("key", signature={...}, verify=None)`."""
        self._check_key(key, "webhook")
        config = None
        if signature is not None:
            secret = signature.get("secret")
            if not isinstance(secret, SecretRef):
                raise self._fail(key, "signature['secret'] must be worker.env('NAME')")
            algorithm = signature.get("algorithm", "sha256")
            if algorithm not in ("sha1", "sha256", "sha512"):
                raise self._fail(key, f"signature algorithm {algorithm!r} is not sha1, sha256 or sha512")
            config = {
                "secret": secret.name,
                "header": signature.get("header", "X-Signature"),
                "algorithm": algorithm,
                "prefix": signature.get("prefix", ""),
                "timestamp_header": signature.get("timestamp_header", ""),
                "tolerance": signature.get("tolerance"),
            }

        def register(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            self.webhooks[key] = WebhookDef(self.slug, key, func, config, verify)
            return func

        return register

    def pacer(self, key: str, allowed_requests: int = 10, interval_ms: int = 1000) -> Pacer:
        """Declare a request budget: at most `allowed_requests` per `interval_ms`, site-wide, evenly spaced."""
        if not isinstance(key, str) or not _KEY.match(key):
            raise self._fail(str(key), "pacer key must start with a letter and use letters, digits, _ or -")
        if key in self.pacers:
            raise self._fail(key, f"duplicate pacer: {key} is already declared in this worker")
        for option, value in (("allowed_requests", allowed_requests), ("interval_ms", interval_ms)):
            # bool is an int: True requests per interval is a typo, not a budget.
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10**9:
                raise self._fail(key, f"{option} must be a whole number from 1 to 1000000000, not {value!r}")
        pacer = Pacer(self.slug, key, allowed_requests, interval_ms)
        self.pacers[key] = pacer
        return pacer


def _is_http_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


_MAX_TIME_LIMIT = 24 * 3600


def _check_time_limit(worker: Worker, key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= _MAX_TIME_LIMIT:
        raise worker._fail(key, f"time_limit must be a number of seconds between 0 and {_MAX_TIME_LIMIT}")


def _check_json_schema(worker: Worker, key: str, option: str, value: Any) -> None:
    error = schema_error(value)
    if error is not None:
        raise worker._fail(key, f"{option} {error}")
