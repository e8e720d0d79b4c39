"""Imports the modules in WORKER_MODULES and indexes the workers they define."""

from __future__ import annotations

import importlib
import threading

from .conf import app_settings
from .exceptions import WorkerDefinitionError, WorkerNotFound
from .sdk.worker import OAuthCapability, SyncDef, ToolDef, WebhookDef, Worker
from .source import fingerprint, worker_files

_lock = threading.Lock()
_cache: dict[tuple[str, ...], dict[str, Worker]] = {}


def load_workers(modules: list[str] | None = None) -> dict[str, Worker]:
    """Every worker defined by `modules` (default WORKER_MODULES), by slug; imported once per process."""
    names = tuple(modules if modules is not None else app_settings.WORKER_MODULES)
    with _lock:
        if names not in _cache:
            _cache[names] = _import(names)
        return _cache[names]


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _import(names: tuple[str, ...]) -> dict[str, Worker]:
    workers: dict[str, Worker] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except WorkerDefinitionError:
            raise
        except ImportError as exc:
            raise WorkerDefinitionError(f"Cannot import worker module {name}: {exc}") from None
        except Exception as exc:
            # Any other mistake in worker code (a NameError, a bad j.enum()) is still a definition
            # error: commands report it in one line instead of a traceback.
            raise WorkerDefinitionError(f"Cannot import worker module {name}: {type(exc).__name__}: {exc}") from exc
        # Read right after the import: what this process runs, compared with what was deployed.
        code = fingerprint(worker_files([name]))
        found = [value for value in vars(module).values() if isinstance(value, Worker)]
        if not found:
            raise WorkerDefinitionError(f"Worker module {name} defines no Worker")
        for worker in found:
            if worker.slug in workers and workers[worker.slug] is not worker:
                raise WorkerDefinitionError(
                    f"Worker {worker.slug} is defined twice: in {workers[worker.slug].module} and in {name}"
                )
            worker.module = name
            worker.code_fingerprint = code
            workers[worker.slug] = worker
    return workers


def get_worker(slug: str) -> Worker:
    try:
        return load_workers()[slug]
    except KeyError:
        raise WorkerNotFound(f"No worker {slug!r} in WORKER_MODULES") from None


def get_capability(worker: str, key: str) -> OAuthCapability:
    try:
        return get_worker(worker).capabilities[key]
    except KeyError:
        raise WorkerNotFound(f"Worker {worker} declares no OAuth capability {key!r}") from None


def get_tool(worker: str, key: str) -> ToolDef:
    try:
        return get_worker(worker).tools[key]
    except KeyError:
        raise WorkerNotFound(f"Worker {worker} declares no tool {key!r}") from None


def get_sync(worker: str, key: str) -> SyncDef:
    try:
        return get_worker(worker).syncs[key]
    except KeyError:
        raise WorkerNotFound(f"Worker {worker} declares no sync {key!r}") from None


def get_webhook(worker: str, key: str) -> WebhookDef:
    try:
        return get_worker(worker).webhooks[key]
    except KeyError:
        raise WorkerNotFound(f"Worker {worker} declares no webhook {key!r}") from None
