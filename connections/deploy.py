"""Deploy: record the workers defined in code, and what they declare, in the database."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections, models, router, transaction
from django.utils import timezone

from . import models as m
from .conf import app_settings
from .exceptions import EndpointChangeRefused
from .registry import load_workers
from .sdk.worker import SecretRef, Worker, parse_schedule
from .secrets import missing_secrets

SYNC_TASK = "connections.tasks.run_scheduled_sync"
ENDPOINT_FIELDS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint")


@dataclass
class DeployReport:
    changes: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    # What deploy did beyond the code's declarations (secrets it filled in), by name only.
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def resolve_endpoint(url: str) -> str:
    """Site-relative endpoints (the sandbox provider) become absolute against PUBLIC_URL."""
    return app_settings.PUBLIC_URL + url if url.startswith("/") else url


@dataclass(frozen=True)
class EndpointChange:
    """An endpoint of a capability that has a connection, which this deploy would change."""

    worker: str
    key: str
    field: str
    old: str
    new: str

    def __str__(self) -> str:
        what = self.field.replace("_", " ")
        return f"{self.worker}:{self.key} is connected: deploy changes its {what} from {self.old} to {self.new}"


def endpoint_changes(workers: dict[str, Worker]) -> list[EndpointChange]:
    """Endpoint changes of connected capabilities: a wrong PUBLIC_URL would otherwise move them silently."""
    found: list[EndpointChange] = []
    for worker in workers.values():
        for key, cap in worker.capabilities.items():
            record = (
                m.OAuthCapability.objects.filter(worker__slug=worker.slug, key=key)
                .exclude(connection=None)
                .exclude(connection__status=m.Connection.Status.NOT_CONNECTED)
                .first()
            )
            if record is None:
                continue
            for name in ENDPOINT_FIELDS:
                new = resolve_endpoint(getattr(cap, name))
                if getattr(record, name) != new:
                    found.append(EndpointChange(worker.slug, key, name, getattr(record, name), new))
    return found


def deploy(
    modules: list[str] | None = None, *, confirm: Callable[[list[EndpointChange]], bool] | None = None
) -> DeployReport:
    """Idempotent: a second run with the same code reports no change. Nothing is ever deleted.

    With `confirm`, a deploy that changes an endpoint of a connected capability first asks it;
    when it answers False nothing is written and EndpointChangeRefused is raised.
    """
    workers = load_workers(modules)
    if confirm is not None:
        # Asked before the transaction: no database lock is held while a person reads the question.
        changes = endpoint_changes(workers)
        if changes and not confirm(changes):
            raise EndpointChangeRefused(
                f"Deploy refused: it would change {len(changes)} endpoint(s) of connected capabilities "
                "(is PUBLIC_URL right?); nothing was changed. Pass --yes to deploy anyway."
            )
    report = DeployReport()
    now = timezone.now()
    with transaction.atomic():
        for worker in workers.values():
            record = _upsert(
                m.Worker,
                {"slug": worker.slug},
                {"module": worker.module, "is_active": True},
                report,
                f"worker {worker.slug}",
            )
            _deploy_worker(worker, record, report)
            if record.code_fingerprint and record.code_fingerprint != worker.code_fingerprint:
                report.changes.append(
                    f"~ worker {worker.slug}: code changed (runs by processes that imported the old code are "
                    "flagged until they restart)"
                )
            m.Worker.objects.filter(pk=record.pk).update(deployed_at=now, code_fingerprint=worker.code_fingerprint)
        stale_workers = list(m.Worker.objects.filter(is_active=True).exclude(slug__in=list(workers)))
        if stale_workers:
            report.notes.append(
                f"WORKER_MODULES is {','.join(app_settings.WORKER_MODULES if modules is None else modules)}: "
                "a worker of a module not listed is marked inactive (its secrets and tokens are kept; list its "
                "module again and deploy to bring it back). Set WORKER_MODULES in .env, so that every "
                "command and process uses the same list."
            )
        for stale in stale_workers:
            stale.is_active = False
            stale.save(update_fields=["is_active"])
            report.changes.append(f"- worker {stale.slug} is no longer in WORKER_MODULES: marked inactive")
            for related in (
                stale.capabilities,
                stale.tools,
                stale.syncs,
                stale.webhooks,
                stale.databases,
                stale.pacers,
            ):
                related.filter(is_active=True).update(is_active=False)
            _unschedule(m.Sync.objects.filter(worker=stale))
        if app_settings.SANDBOX_PROVIDER:
            # The sandbox provider serves this site: a worker on its preset needs no credentials of its own.
            from sandbox.setup import share_credentials

            report.notes.extend(share_credentials())
        for record in m.Worker.objects.filter(is_active=True):
            missing = missing_secrets(record)
            if missing:
                report.missing[record.slug] = missing
    return report


def _deploy_worker(worker: Worker, record: m.Worker, report: DeployReport) -> None:
    label = worker.slug
    for key, cap in worker.capabilities.items():
        values = {
            "name": cap.name,
            "provider": cap.provider,
            "authorization_endpoint": resolve_endpoint(cap.authorization_endpoint),
            "token_endpoint": resolve_endpoint(cap.token_endpoint),
            "revocation_endpoint": resolve_endpoint(cap.revocation_endpoint),
            "scope": cap.scope,
            "client_id": {"secret": cap.client_id.name}
            if isinstance(cap.client_id, SecretRef)
            else {"value": cap.client_id},
            "client_secret_ref": cap.client_secret.name if isinstance(cap.client_secret, SecretRef) else "",
            "client_secret_literal": "" if isinstance(cap.client_secret, SecretRef) else cap.client_secret,
            "authorization_params": cap.authorization_params,
            "access_token_expire_ms": cap.access_token_expire_ms,
            "use_pkce": cap.pkce,
            "is_active": True,
        }
        capability = _upsert(
            m.OAuthCapability, {"worker": record, "key": key}, values, report, f"OAuth capability {label}:{key}"
        )
        m.Connection.objects.get_or_create(capability=capability)
    _deactivate(
        m.OAuthCapability,
        record,
        worker.capabilities,
        report,
        "OAuth capability",
        note="its secrets and tokens are kept",
    )

    for key, db in worker.databases.items():
        _upsert(
            m.SyncedDatabase,
            {"worker": record, "key": key},
            {
                "title": db.title,
                "primary_key": db.primary_key,
                "properties": db.properties,
                "property_order": list(db.properties),
                "is_active": True,
            },
            report,
            f"database {label}:{key}",
            unreported=lambda stored: ("property_order",) if _order_from_migration(stored) else (),
        )
    _deactivate(m.SyncedDatabase, record, worker.databases, report, "database", note="its records are kept")

    for key, tool in worker.tools.items():
        _upsert(
            m.Tool,
            {"worker": record, "key": key},
            {
                "title": tool.title,
                "description": tool.description,
                "input_schema": tool.schema,
                "output_schema": tool.output_schema,
                "hints": tool.hints,
                "time_limit": tool.time_limit,
                "is_active": True,
            },
            report,
            f"tool {label}:{key}",
        )
    _deactivate(m.Tool, record, worker.tools, report, "tool")

    for key, sync in worker.syncs.items():
        database = m.SyncedDatabase.objects.get(worker=record, key=sync.database.key)
        row = _upsert(
            m.Sync,
            {"worker": record, "key": key},
            {
                "database": database,
                "schedule": sync.schedule,
                "mode": sync.mode,
                "time_limit": sync.time_limit,
                "is_active": True,
            },
            report,
            f"sync {label}:{key}",
        )
        _schedule(row)
    removed = _deactivate(m.Sync, record, worker.syncs, report, "sync")
    _unschedule(m.Sync.objects.filter(pk__in=removed))

    for key, hook in worker.webhooks.items():
        _upsert(
            m.Webhook,
            {"worker": record, "key": key},
            {"signature": hook.signature, "is_active": True},
            report,
            f"webhook {label}:{key}",
        )
    _deactivate(m.Webhook, record, worker.webhooks, report, "webhook")

    for key, pacer in worker.pacers.items():
        _upsert(
            m.Pacer,
            {"worker": record, "key": key},
            {"allowed_requests": pacer.allowed_requests, "interval_ms": pacer.interval_ms, "is_active": True},
            report,
            f"pacer {label}:{key}",
        )
    _deactivate(m.Pacer, record, worker.pacers, report, "pacer")


def _comparable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _order_from_migration(database: m.SyncedDatabase) -> bool:
    """Whether the database's property order is what migration 0017 filled in, not a deploy's.

    The migration took the order of the stored properties, which on PostgreSQL is jsonb's (shorter
    names first), not the code's: the deploy after it writes the code's order without reporting it
    as a change the developer made. Elsewhere the stored order is the code's at its last deploy,
    which the migration copied, so a later reorder in code is reported as any change is.
    """
    vendor = connections[router.db_for_write(m.SyncedDatabase)].vendor
    return vendor == "postgresql" and database.property_order == list(database.properties)


def _upsert(
    model: type[models.Model],
    lookup: dict[str, Any],
    values: dict[str, Any],
    report: DeployReport,
    label: str,
    *,
    unreported: Callable[[Any], tuple[str, ...]] = lambda stored: (),
) -> Any:
    """Create or update the row; a line in the report for what changed, except the fields that
    `unreported(row as stored)` names (bookkeeping a person did not write as such), saved without one."""
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model.objects.create(**lookup, **values)
        report.changes.append(f"+ {label}")
        return obj
    changed = [name for name, value in values.items() if _comparable(getattr(obj, name)) != _comparable(value)]
    if changed:
        quiet = unreported(obj)  # judged on the row as it was stored
        for name in changed:
            setattr(obj, name, values[name])
        # Only what the code declares: a running sync commits its state, cycle and page count to this
        # row meanwhile, and a whole-row save would put back the ones read above (a replace-mode cycle
        # resumed from a stale page count would then delete records it never saw).
        stamped = [f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        obj.save(update_fields=[*changed, *stamped])
        changed = [name for name in changed if name not in quiet]
    if changed:
        # Field names only: a changed literal client secret must not be echoed.
        reactivated = "is_active" in changed and len(changed) == 1
        report.changes.append(
            f"~ {label}: " + ("reactivated" if reactivated else f"{', '.join(sorted(changed))} changed")
        )
    return obj


def _deactivate(
    model: type[models.Model],
    worker: m.Worker,
    declared: dict[str, Any],
    report: DeployReport,
    kind: str,
    note: str = "",
) -> list[int]:
    gone = list(model.objects.filter(worker=worker, is_active=True).exclude(key__in=list(declared)))
    for obj in gone:
        obj.is_active = False
        obj.save(update_fields=["is_active"])
        report.changes.append(
            f"- {kind} {worker.slug}:{obj.key} removed from code: marked inactive" + (f" ({note})" if note else "")
        )
    return [obj.pk for obj in gone]


def _schedule(sync: m.Sync) -> None:
    """Keep the sync's django-celery-beat entry in step with its `schedule`."""
    from celery.schedules import crontab
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    kind, value = parse_schedule(sync.schedule)
    if kind == "manual":
        # No beat entry at all: nothing but a person can start a manual sync.
        if sync.periodic_task_id is not None:
            PeriodicTask.objects.filter(pk=sync.periodic_task_id).delete()
        return
    schedule_fields: dict[str, Any] = {"interval": None, "crontab": None}
    if kind == "cron":
        minute, hour, day_of_month, month_of_year, day_of_week = str(value).split()
        spec = crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
        spec.tz = ZoneInfo("UTC")
        # django-celery-beat's own mapping of a Celery schedule to its row: an existing one or a new one.
        row = CrontabSchedule.from_schedule(spec)
    else:
        # "continuous" is polled every minute; a cycle still running makes the tick a no-op.
        # Not IntervalSchedule.from_schedule: it stores every interval in seconds ("every 900
        # seconds" in the admin), and its `period` argument does not convert them.
        every = 1 if kind == "continuous" else int(value)  # type: ignore[arg-type]
        row, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.MINUTES)
    if row.pk is None:
        row.save()
    schedule_fields["crontab" if kind == "cron" else "interval"] = row
    values = {
        "task": SYNC_TASK,
        "kwargs": json.dumps({"sync_id": sync.pk}),
        "enabled": True,
        **schedule_fields,
    }
    name = f"workers sync {sync.worker.slug}:{sync.key}"
    task = sync.periodic_task
    if task is None:
        task, _ = PeriodicTask.objects.get_or_create(name=name, defaults=values)
        m.Sync.objects.filter(pk=sync.pk).update(periodic_task=task)
    if any(_comparable(getattr(task, k)) != _comparable(v) for k, v in values.items()):
        for k, v in values.items():
            setattr(task, k, v)
        task.save()


def _unschedule(syncs: models.QuerySet) -> None:
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    updated = PeriodicTask.objects.filter(
        pk__in=syncs.exclude(periodic_task=None).values("periodic_task"), enabled=True
    ).update(enabled=False)
    if updated:
        # A bulk update sends no signal, and a running beat reloads only when told so.
        PeriodicTasks.update_changed()
