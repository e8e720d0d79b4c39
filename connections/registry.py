"""Imports the modules in WORKER_MODULES and indexes the workers they define."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import threading

from .conf import app_settings
from .exceptions import WorkerDefinitionError, WorkerNotFound, WorkersError
from .models import Secret
from .models import Worker as WorkerRow
from .sdk.worker import OAuthCapability, SyncDef, ToolDef, WebhookDef, Worker
from .source import fingerprint, worker_files

_lock = threading.Lock()
_cache: dict[tuple[str, ...], dict[str, Worker]] = {}


_generation = 0


def load_workers(modules: list[str] | None = None) -> dict[str, Worker]:
    """Every worker defined by `modules` (default WORKER_MODULES), by slug; imported once per process."""
    names = tuple(modules if modules is not None else app_settings.WORKER_MODULES)
    with _lock:
        if names not in _cache:
            _cache[names] = _import(names)
        return _cache[names]


def clear_cache() -> None:
    global _generation
    with _lock:
        _cache.clear()
        _generation += 1


def generation() -> int:
    """How many times clear_cache ran: what a module keeps beside the imported workers is dropped with them."""
    return _generation


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


def _names_in_code(slug: str) -> set[str]:
    """NAME of every `<x>.env("NAME")` call in the module defining the worker: code may read a secret
    inside a tool (`worker.env("API_KEY").resolve()`), which deploy does not record."""
    try:
        module = sys.modules[get_worker(slug).module]
        tree = ast.parse(inspect.getsource(module))
    except (WorkersError, KeyError, OSError, TypeError, SyntaxError):
        return set()  # not importable here (another machine's WORKER_MODULES): the recorded names only
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "env"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def referenced_names(worker: WorkerRow) -> set[str]:
    """Secret names the worker refers to: its active capabilities and webhooks, and env() calls in its code."""
    refs = {n for cap in worker.capabilities.all() if cap.is_active for n in cap.secret_names()}
    refs |= {
        hook.signature["secret"]
        for hook in worker.webhooks.all()
        if hook.is_active and hook.signature and hook.signature.get("secret")
    }
    return refs | _names_in_code(worker.slug)


def workers_wanting(name: str) -> list[str]:
    """Slugs of active workers that refer to secret `name` or already store one by that name."""
    slugs = set(Secret.objects.filter(name=name, worker__is_active=True).values_list("worker__slug", flat=True))
    for worker in WorkerRow.objects.filter(is_active=True).prefetch_related("capabilities", "webhooks"):
        if name in referenced_names(worker):
            slugs.add(worker.slug)
    return sorted(slugs)
