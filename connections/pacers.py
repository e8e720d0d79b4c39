"""Pacers: one request budget per declared pacer for the whole site, on Redis or in the database."""

# The scheme is "next free slot" (GCRA): each acquire atomically reserves the slot
# `max(now, next_slot)` and moves `next_slot` one spacing (interval / allowed requests, plus
# WORKERS_PACER_HEADROOM) further, then sleeps until its slot. Requests are thus evenly spaced (no
# burst when an interval starts), and callers are served in the order they reserved, whatever
# process or machine they run in. At its slot a caller "goes" after one more atomic check: no pause
# began meanwhile (a 429's Retry-After pushes `next_slot` past the pause and records it, so callers
# whose slot fell inside it queue again behind it), and no more than `allowed_requests` went within
# the last interval (a caller woken late by a loaded machine must not bunch up with the next ones).
# A free budget costs one round trip: the reserve step goes at once.
#
# The budget lives on Redis when the broker is Redis (or WORKERS_PACER_REDIS_URL names one), in Lua
# with the Redis server's clock so machines with skewed clocks agree; otherwise on the pacer's
# database row, under the row lock (SQLite: the write lock BEGIN IMMEDIATE takes). A `--local` run
# that cannot reach it uses a budget of its own process, and says so.

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from django.db import DatabaseError, connection, transaction

from .conf import app_settings
from .exceptions import PacerTimeout, PacerUnavailable
from .runtime import is_local

if TYPE_CHECKING:
    from .models import Pacer as PacerRow
    from .sdk.worker import Pacer

_MINUTE = 60
_BUCKET_TTL = 120  # seconds a per-second counter outlives its second on Redis
_RING_MAX = 100  # the most request times a pacer keeps for its window check
# How long after its go a request's time may be moved when it reports its response (done): a
# caller held up between its go and its request still counts from when the request left, up to this.
_DONE_CAP_US = 200_000


@dataclass(frozen=True)
class Plan:
    """A pacer's numbers, in microseconds: slots `spacing` apart, and at most `ring` requests per `window`."""

    spacing: int
    ring: int
    window: int


def plan_for(pacer: Pacer) -> Plan:
    base = pacer.interval_ms * 1000 / pacer.allowed_requests
    spacing = max(1, round(base * (1 + app_settings.PACER_HEADROOM)))
    ring = min(pacer.allowed_requests, _RING_MAX)
    return Plan(spacing, ring, round(base * ring))


# The moment a caller goes. Slots are evenly spaced, but a caller held up after its go (a loaded
# machine) could arrive bunched with the ones after it; so each go is also checked against the
# times of the last `ring` requests: none may go while all of them are within `window` (the
# pacer's interval). A request's time is its go, moved to when its response came back if the
# caller reports it (done): a response comes after the request arrived, so this bounds arrivals.
# Stored times are bounded by `ring`. KEYS: paused, times, counter prefix. ARGV: ring, window,
# counter ttl. Returns {state, micros, ticket}: {1, 0, go time} went; {0, d} wait d and try again;
# {-1, d} paused d more: reserve a new slot.
_GO_LUA = """
local function go(now)
  local stop = tonumber(redis.call('GET', KEYS[1]) or '0')
  if stop > now then return {-1, string.format('%d', stop - now), '0'} end
  local ring = tonumber(ARGV[1])
  local times = redis.call('LRANGE', KEYS[2], 0, ring - 1)
  if #times >= ring then
    local earliest = tonumber(times[1])
    for _, value in ipairs(times) do earliest = math.min(earliest, tonumber(value)) end
    local free = earliest + tonumber(ARGV[2])
    if free > now then return {0, string.format('%d', free - now), '0'} end
  end
  local ticket = string.format('%d', now)
  redis.call('LPUSH', KEYS[2], ticket)
  redis.call('LTRIM', KEYS[2], 0, ring - 1)
  redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[2]) / 1000) + 60000)
  local bucket = KEYS[3] .. string.format('%d', math.floor(now / 1000000))
  if redis.call('INCR', bucket) == 1 then redis.call('EXPIRE', bucket, ARGV[3]) end
  return {1, '0', ticket}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# Reserve the next slot. KEYS as _GO_LUA plus next-slot. ARGV as _GO_LUA plus spacing, max delay.
# Returns {reserved, micros, ticket}: a free slot goes at once (one round trip, ticket its go
# time, else '0'); nothing is reserved when the slot is more than max delay away.
_RESERVE_LUA = (
    _GO_LUA
    + """
local slot = math.max(now, tonumber(redis.call('GET', KEYS[4]) or '0'))
local delay = slot - now
if delay > tonumber(ARGV[5]) then return {0, string.format('%d', delay), '0'} end
local spacing = tonumber(ARGV[4])
redis.call('SET', KEYS[4], string.format('%d', slot + spacing), 'PX', math.floor((delay + spacing) / 1000) + 60000)
if delay == 0 then
  local went = go(now)
  if went[1] == 1 then return {1, '0', went[3]} end
  return {1, went[2], '0'}
end
return {1, string.format('%d', delay), '0'}
"""
)

_TRY_GO_LUA = _GO_LUA + "return go(now)\n"

# The response to the request that went at ARGV[1] came back: its time becomes now (at most
# ARGV[2] later than its go). KEYS: times.
_DONE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local index = redis.call('LPOS', KEYS[1], ARGV[1])
if index then
  local moved = math.min(now, tonumber(ARGV[1]) + tonumber(ARGV[2]))
  redis.call('LSET', KEYS[1], index, string.format('%d', moved))
end
return 1
"""

# Pause for ARGV[1] microseconds from now: no slot may fall before its end. KEYS: next, paused.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stop = now + tonumber(ARGV[1])
local ttl = math.floor(tonumber(ARGV[1]) / 1000) + 60000
for _, key in ipairs(KEYS) do
  if stop > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, string.format('%d', stop), 'PX', ttl)
  end
end
return 1
"""


class Budget:
    """Where the budgets live. `reserve` and `go` are the atomic steps of an acquire."""

    label = ""

    def reserve(self, pacer: Pacer, plan: Plan, max_delay: int) -> tuple[bool, int, int]:
        """(reserved, microseconds to wait, ticket): a free slot goes at once (ticket: its go time, else 0);
        beyond `max_delay` nothing is reserved."""
        raise NotImplementedError

    def go(self, pacer: Pacer, plan: Plan) -> tuple[int, int, int]:
        """At the reserved slot: (1, 0, ticket) went; (0, d, 0) wait d more; (-1, d, 0) paused: reserve again."""
        raise NotImplementedError

    def done(self, pacer: Pacer, ticket: int) -> None:
        """The response to the request that went with `ticket` came back."""
        raise NotImplementedError

    def pause(self, pacer: Pacer, micros: int) -> None:
        raise NotImplementedError

    def recent(self, worker: str, key: str) -> int:
        """Requests that went in the last minute."""
        raise NotImplementedError

    def reset(self, pacer: Pacer) -> None:
        """Forget the budget's state: next slot, pause, goes and counters."""
        raise NotImplementedError


def _check_go(now: int, paused_until: int, times: list[int], plan: Plan) -> tuple[int, int]:
    """The go rule of _GO_LUA for the budgets kept in Python; `times` newest go first."""
    if paused_until > now:
        return -1, paused_until - now
    if len(times) >= plan.ring:
        free = min(times[: plan.ring]) + plan.window
        if free > now:
            return 0, free - now
    return 1, 0


def _moved(times: list[int], ticket: int, now: int) -> list[int]:
    """`times` with the request that went at `ticket` counted from `now` (at most _DONE_CAP_US later)."""
    if ticket in times:
        times = list(times)
        times[times.index(ticket)] = min(now, ticket + _DONE_CAP_US)
    return times


def _count(recent: dict[Any, int], now: int, key: Callable[[int], Any]) -> dict[Any, int]:
    """Per-second counters with this go added and those older than a minute dropped (bounded: 61 entries)."""
    floor = now // 1_000_000 - _MINUTE
    kept = {k: v for k, v in recent.items() if int(k) > floor}
    second = key(now // 1_000_000)
    kept[second] = kept.get(second, 0) + 1
    return kept


# --- Redis ---------------------------------------------------------------------------------


class RedisBudget(Budget):
    label = "Redis"

    def __init__(self, url: str) -> None:
        import redis

        # Short timeouts: a Redis that does not answer must become a clear error, not a hung run.
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._reserve = self.client.register_script(_RESERVE_LUA)
        self._go = self.client.register_script(_TRY_GO_LUA)
        self._done = self.client.register_script(_DONE_LUA)
        self._pause = self.client.register_script(_PAUSE_LUA)

    @staticmethod
    def _keys(worker: str, key: str) -> dict[str, str]:
        # One hash tag per pacer keeps its keys on one node of a cluster.
        base = f"workers:pacer:{{{worker}:{key}}}"
        return {name: f"{base}:{name}" for name in ("paused", "goes", "n:", "next")}

    def reserve(self, pacer: Pacer, plan: Plan, max_delay: int) -> tuple[bool, int, int]:
        keys = self._keys(pacer.worker, pacer.key)
        reserved, delay, ticket = self._reserve(
            keys=[keys["paused"], keys["goes"], keys["n:"], keys["next"]],
            args=[plan.ring, plan.window, _BUCKET_TTL, plan.spacing, max_delay],
        )
        return bool(int(reserved)), int(delay), int(ticket)

    def go(self, pacer: Pacer, plan: Plan) -> tuple[int, int, int]:
        keys = self._keys(pacer.worker, pacer.key)
        state, delay, ticket = self._go(
            keys=[keys["paused"], keys["goes"], keys["n:"]], args=[plan.ring, plan.window, _BUCKET_TTL]
        )
        return int(state), int(delay), int(ticket)

    def done(self, pacer: Pacer, ticket: int) -> None:
        self._done(keys=[self._keys(pacer.worker, pacer.key)["goes"]], args=[ticket, _DONE_CAP_US])

    def pause(self, pacer: Pacer, micros: int) -> None:
        keys = self._keys(pacer.worker, pacer.key)
        self._pause(keys=[keys["next"], keys["paused"]], args=[micros])

    def recent(self, worker: str, key: str) -> int:
        prefix = self._keys(worker, key)["n:"]
        seconds, _ = self.client.time()
        # The current second and the 59 before it: at most 60 keys, all with an expiry.
        values = self.client.mget([f"{prefix}{seconds - back}" for back in range(_MINUTE)])
        return sum(int(v) for v in values if v is not None)

    def reset(self, pacer: Pacer) -> None:
        keys = self._keys(pacer.worker, pacer.key)
        seconds, _ = self.client.time()
        buckets = [f"{keys['n:']}{seconds - back}" for back in range(_BUCKET_TTL + 1)]
        self.client.delete(keys["next"], keys["paused"], keys["goes"], *buckets)


# --- the database ----------------------------------------------------------------------------


def _db_now_us() -> int:
    """The database server's clock on PostgreSQL (machines may disagree); this machine's on SQLite."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
            return int(cursor.fetchone()[0])
    return time.time_ns() // 1000


class DatabaseBudget(Budget):
    label = "the database"

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}

    def _row_id(self, pacer: Pacer) -> int:
        from .models import Pacer as PacerRow
        from .models import Worker

        cached = self._ids.get((pacer.worker, pacer.key))
        if cached is not None:
            return cached
        row = PacerRow.objects.filter(worker__slug=pacer.worker, key=pacer.key).values_list("pk", flat=True).first()
        if row is None:
            # Declared in code but not deployed yet: the budget still has to be shared, so the row is made now.
            worker = Worker.objects.filter(slug=pacer.worker).first()
            if worker is None:
                raise PacerUnavailable(
                    f"Pacer {pacer.worker}:{pacer.key} has no budget: worker {pacer.worker} is not deployed "
                    "(run `python manage.py workers deploy`)."
                )
            row = PacerRow.objects.get_or_create(
                worker=worker,
                key=pacer.key,
                defaults={"allowed_requests": pacer.allowed_requests, "interval_ms": pacer.interval_ms},
            )[0].pk
        self._ids[(pacer.worker, pacer.key)] = row
        return row

    def _locked(self, pacer: Pacer) -> Any:
        from .models import Pacer as PacerRow

        rows = PacerRow.objects.select_for_update().only("next_slot_us", "paused_until_us", "goes", "recent")
        row = rows.filter(pk=self._row_id(pacer)).first()
        if row is None:  # the remembered row is gone (a test flushed the database): look it up again
            self._ids.pop((pacer.worker, pacer.key), None)
            row = rows.get(pk=self._row_id(pacer))
        return row

    def reserve(self, pacer: Pacer, plan: Plan, max_delay: int) -> tuple[bool, int, int]:
        with transaction.atomic():
            row = self._locked(pacer)
            now = _db_now_us()
            slot = max(now, row.next_slot_us)
            delay = slot - now
            if delay > max_delay:
                return False, delay, 0
            row.next_slot_us = slot + plan.spacing
            fields = ["next_slot_us"]
            ticket = 0
            if delay == 0:
                state, delay = _check_go(now, row.paused_until_us, row.goes or [], plan)
                if state == 1:
                    self._went(row, now, plan)
                    fields += ["goes", "recent"]
                    ticket = now
            row.save(update_fields=fields)
        return True, delay, ticket

    def go(self, pacer: Pacer, plan: Plan) -> tuple[int, int, int]:
        with transaction.atomic():
            row = self._locked(pacer)
            now = _db_now_us()
            state, delay = _check_go(now, row.paused_until_us, row.goes or [], plan)
            if state == 1:
                self._went(row, now, plan)
                row.save(update_fields=["goes", "recent"])
        return state, delay, now if state == 1 else 0

    def done(self, pacer: Pacer, ticket: int) -> None:
        with transaction.atomic():
            row = self._locked(pacer)
            moved = _moved(row.goes or [], ticket, _db_now_us())
            if moved != row.goes:
                row.goes = moved
                row.save(update_fields=["goes"])

    @staticmethod
    def _went(row: Any, now: int, plan: Plan) -> None:
        row.goes = [now, *(row.goes or [])][: plan.ring]
        row.recent = _count(row.recent or {}, now, str)

    def pause(self, pacer: Pacer, micros: int) -> None:
        with transaction.atomic():
            row = self._locked(pacer)
            stop = _db_now_us() + micros
            row.next_slot_us = max(row.next_slot_us, stop)
            row.paused_until_us = max(row.paused_until_us, stop)
            row.save(update_fields=["next_slot_us", "paused_until_us"])

    def recent(self, worker: str, key: str) -> int:
        from .models import Pacer as PacerRow

        counts = PacerRow.objects.filter(worker__slug=worker, key=key).values_list("recent", flat=True).first()
        now_second = _db_now_us() // 1_000_000
        return sum(v for k, v in (counts or {}).items() if now_second - _MINUTE < int(k) <= now_second)

    def reset(self, pacer: Pacer) -> None:
        from .models import Pacer as PacerRow

        PacerRow.objects.filter(pk=self._row_id(pacer)).update(next_slot_us=0, paused_until_us=0, goes=[], recent={})


# --- one process ---------------------------------------------------------------------------


class _LocalState:
    def __init__(self) -> None:
        self.next_slot = 0
        self.paused_until = 0
        self.goes: list[int] = []
        self.recent: dict[Any, int] = {}


class LocalBudget(Budget):
    """A budget of this process only: for `--local` runs that cannot reach the site's."""

    label = "this process only"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _LocalState] = {}

    def _state(self, worker: str, key: str) -> _LocalState:
        return self._states.setdefault((worker, key), _LocalState())

    def _went(self, state: _LocalState, now: int, plan: Plan) -> None:
        state.goes = [now, *state.goes][: plan.ring]
        state.recent = _count(state.recent, now, int)

    def reserve(self, pacer: Pacer, plan: Plan, max_delay: int) -> tuple[bool, int, int]:
        with self._lock:
            state = self._state(pacer.worker, pacer.key)
            now = time.time_ns() // 1000
            slot = max(now, state.next_slot)
            delay = slot - now
            if delay > max_delay:
                return False, delay, 0
            state.next_slot = slot + plan.spacing
            if delay == 0:
                verdict, delay = _check_go(now, state.paused_until, state.goes, plan)
                if verdict == 1:
                    self._went(state, now, plan)
                    return True, 0, now
            return True, delay, 0

    def go(self, pacer: Pacer, plan: Plan) -> tuple[int, int, int]:
        with self._lock:
            state = self._state(pacer.worker, pacer.key)
            now = time.time_ns() // 1000
            verdict, delay = _check_go(now, state.paused_until, state.goes, plan)
            if verdict == 1:
                self._went(state, now, plan)
            return verdict, delay, now if verdict == 1 else 0

    def done(self, pacer: Pacer, ticket: int) -> None:
        with self._lock:
            state = self._state(pacer.worker, pacer.key)
            state.goes = _moved(state.goes, ticket, time.time_ns() // 1000)

    def pause(self, pacer: Pacer, micros: int) -> None:
        with self._lock:
            state = self._state(pacer.worker, pacer.key)
            stop = time.time_ns() // 1000 + micros
            state.next_slot = max(state.next_slot, stop)
            state.paused_until = max(state.paused_until, stop)

    def recent(self, worker: str, key: str) -> int:
        now_second = time.time_ns() // 1_000_000_000
        with self._lock:
            counts = self._state(worker, key).recent
            return sum(v for s, v in counts.items() if now_second - _MINUTE < s <= now_second)

    def reset(self, pacer: Pacer) -> None:
        with self._lock:
            self._states.pop((pacer.worker, pacer.key), None)


# --- choosing the budget -------------------------------------------------------------------

_budgets: dict[tuple[int, str], Budget] = {}
_budgets_lock = threading.Lock()
_local_budget = LocalBudget()
# `--local` runs that could not reach the shared budget: they keep the process-local one.
_fallen_back: set[tuple[str, str]] = set()
_announced: set[tuple[str, str]] = set()


def shared_budget() -> Budget:
    """The site's budget: Redis when one is configured (WORKERS_PACER_REDIS_URL or a Redis broker), else the database."""
    url = app_settings.PACER_REDIS_URL
    # Per process: a prefork child must not share its parent's Redis sockets.
    name = (os.getpid(), url)
    with _budgets_lock:
        budget = _budgets.get(name)
        if budget is None:
            budget = RedisBudget(url) if url else DatabaseBudget()
            _budgets[name] = budget
        return budget


def describe_backend() -> str:
    """Where the site's pacer budgets live, for people: "Redis" or "the database"."""
    return shared_budget().label


def _unreachable() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, DatabaseError, OSError)


def _local_run() -> bool:
    return is_local()


def _say(text: str) -> None:
    # stderr: a --local run echoes it to the person and keeps it in the run's log.
    print(text, file=sys.stderr)


def _call(pacer: Pacer, step: Callable[[Budget], Any]) -> Any:
    """Run one step against the shared budget; a `--local` run that cannot reach it uses its own."""
    name = (pacer.worker, pacer.key)
    local = _local_run()
    if local and name in _fallen_back:
        return step(_local_budget)
    try:
        result = step(shared_budget())
    except _unreachable() as exc:
        if not local:
            raise PacerUnavailable(
                f"Pacer {pacer.worker}:{pacer.key}: its budget on {describe_backend()} cannot be reached "
                f"({type(exc).__name__})."
            ) from exc
        _fallen_back.add(name)
        _say(
            f"Pacer {pacer.worker}:{pacer.key}: the site's budget on {describe_backend()} cannot be reached "
            f"({type(exc).__name__}); this --local run paces with a budget of its own process only."
        )
        return step(_local_budget)
    if local and name not in _announced:
        _announced.add(name)
        _say(f"Pacer {pacer.worker}:{pacer.key}: sharing the site's budget on {describe_backend()}.")
    return result


# --- what the SDK calls --------------------------------------------------------------------


def wait(pacer: Pacer, timeout: float | None = None) -> float:
    """Block until the pacer lets one request go; the seconds waited. PacerTimeout past `timeout`."""
    return acquire(pacer, timeout)[0]


def acquire(pacer: Pacer, timeout: float | None = None) -> tuple[float, int]:
    """`wait()`, and the ticket to pass to `done()` once the request's response came back."""
    limit = app_settings.PACER_MAX_WAIT if timeout is None else max(0.0, float(timeout))
    plan = plan_for(pacer)
    start = time.monotonic()
    while True:
        left = max(0, int((limit - (time.monotonic() - start)) * 1_000_000))
        reserved, delay, ticket = _call(pacer, lambda b, left=left: b.reserve(pacer, plan, left))
        if not reserved:
            raise PacerTimeout(
                f"Pacer {pacer.worker}:{pacer.key}: the next free slot is {delay / 1e6:.1f} s away, "
                f"more than the {limit:g} s this caller may wait.",
                retry_after=delay / 1e6,
            )
        while not ticket:
            time.sleep(delay / 1_000_000)
            state, delay, ticket = _call(pacer, lambda b: b.go(pacer, plan))
            if state == -1:
                break  # a 429 paused the pacer while this caller slept: its slot is void, queue behind the pause
        if ticket:
            return time.monotonic() - start, ticket


def done(pacer: Pacer, ticket: int) -> None:
    """The response to the request `acquire()` let go came back: count that request from now, not its go."""
    _call(pacer, lambda b: b.done(pacer, ticket))


def try_acquire(pacer: Pacer) -> bool:
    """Go only when a slot is free now; never blocks, reserves nothing otherwise."""
    _, _, ticket = _call(pacer, lambda b: b.reserve(pacer, plan_for(pacer), 0))
    # A free slot that the window check holds back is lost: that errs on the side of fewer requests.
    return bool(ticket)


def pause(pacer: Pacer, seconds: float) -> None:
    """Hold every caller of the pacer for `seconds` (at most WORKERS_PACER_MAX_PAUSE)."""
    seconds = min(max(0.0, float(seconds)), app_settings.PACER_MAX_PAUSE)
    if seconds > 0:
        _call(pacer, lambda b: b.pause(pacer, int(seconds * 1_000_000)))


def reset(pacer: Pacer) -> None:
    """Forget a pacer's state on the shared budget (tests, and an admin who wants a clean slate)."""
    _call(pacer, lambda b: b.reset(pacer))


def requests_last_minute(worker: str, key: str) -> int | None:
    """Requests the pacer let go in the last minute, site-wide; None when the budget cannot be reached."""
    try:
        return shared_budget().recent(worker, key)
    except _unreachable():
        return None


def requests_last_minute_of(row: PacerRow) -> int | None:
    """requests_last_minute() for a pacer row already loaded: on the database budget its counters are
    in the row, so a list of pacers costs no query per row. The window is this machine's clock (the
    budget keeps the database's): a count shown may be off by the seconds the two disagree."""
    budget = shared_budget()
    if not isinstance(budget, DatabaseBudget):
        return requests_last_minute(row.worker.slug, row.key)
    now_second = time.time_ns() // 1_000_000_000
    return sum(v for k, v in (row.recent or {}).items() if now_second - _MINUTE < int(k) <= now_second)


def send_paced(pacer: Pacer, send: Callable[[], requests.Response]) -> requests.Response:
    """Send one request in its turn. A 429 with Retry-After pauses the whole pacer, then the request is sent once more."""
    from .retry_after import parse_retry_after

    response = _send_one(pacer, send)
    if response.status_code != 429:
        return response
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None:
        return response
    pause(pacer, retry_after)
    response.close()
    response = _send_one(pacer, send)
    if response.status_code == 429:
        # Still refused: pause again for the others, and let the run's own retry handle this one.
        pause(pacer, parse_retry_after(response.headers.get("Retry-After")) or retry_after)
    return response


def _send_one(pacer: Pacer, send: Callable[[], requests.Response]) -> requests.Response:
    _, ticket = acquire(pacer)
    try:
        return send()
    finally:
        try:
            done(pacer, ticket)
        except PacerUnavailable:
            pass  # only the window check loses a little precision; the request itself went through


class PacedSession(requests.Session):
    """`pacer.session()`: a plain requests session whose every request goes through the pacer."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self.pacer = pacer

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        send = super().request
        return send_paced(self.pacer, lambda: send(method, url, *args, **kwargs))
