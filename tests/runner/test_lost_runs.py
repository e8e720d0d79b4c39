"""Runs left `running` by a dead process are queued again by the beat task, and finish on a live worker;
runs whose message the broker did not take are kept and sent once it answers."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from connections.models import Run, Sync, Tool
from connections.runner.tools import execute_tool, start_tool
from connections.tasks import requeue_lost_runs

from ..conftest import PrivateRedis
from .conftest import wait_for_run

pytestmark = pytest.mark.celery


def claimed_by_a_dead_process(run: Run, attempts: int) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now belongs to no process
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING,
        attempts=attempts,
        started_at=now,
        heartbeat_at=now,
        owner=f"{socket.gethostname()}:{gone.pid}",
    )


def test_a_run_whose_process_died_is_requeued_and_finishes(runner_site, celery_worker):
    run = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    claimed_by_a_dead_process(run, attempts=1)
    assert requeue_lost_runs() == {"requeued": 1, "failed": 0, "sent": 0, "unsent": 0, "overdue": 0}
    run = wait_for_run(run.pk)
    assert run.status == Run.Status.SUCCEEDED and run.result == {"sum": 5} and run.attempts == 2


def test_a_run_alive_elsewhere_is_left_alone_and_one_dying_too_often_is_failed(runner_site):
    alive = start_tool("runner-test", "add", {"a": 1, "b": 1}, trigger="test", send=False)
    Run.objects.filter(pk=alive.pk).update(
        status=Run.Status.RUNNING, attempts=1, heartbeat_at=timezone.now(), owner="another-machine:4242"
    )
    doomed = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)
    claimed_by_a_dead_process(doomed, attempts=99)
    assert requeue_lost_runs() == {"requeued": 0, "failed": 1, "sent": 0, "unsent": 0, "overdue": 0}
    doomed.refresh_from_db()
    assert doomed.status == Run.Status.FAILED and "died 99 time(s)" in doomed.error
    assert Run.objects.get(pk=alive.pk).status == Run.Status.RUNNING


def test_a_queued_run_whose_message_was_lost_is_sent_again_once_overdue(runner_site, celery_worker):
    # Committed, its message never sent: as when the process died between the two, or when a Redis
    # restarted without persistence forgot it.
    lost = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    waiting = start_tool("runner-test", "add", {"a": 1, "b": 1}, trigger="test", send=False)
    Run.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(hours=2))

    assert requeue_lost_runs()["overdue"] == 1
    # The next tick, before any worker could take it (microseconds later): sent once an hour, not
    # once a minute while it waits in a queue.
    assert requeue_lost_runs()["overdue"] == 0
    lost = wait_for_run(lost.pk)
    assert lost.status == Run.Status.SUCCEEDED and lost.result == {"sum": 5} and lost.attempts == 1
    # Queued for less than WORKERS_RUN_RESEND_AFTER (an hour): perhaps still in a long queue.
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED


def test_a_retry_is_sent_again_only_long_after_its_backoff_ends(runner_site, celery_worker):
    run = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    long_ago = timezone.now() - timedelta(hours=2)
    # Queued long ago, but its retry is due in ten minutes: its message, held back until then, may still come.
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RETRYING, attempts=1, queued_at=long_ago, due_at=timezone.now() + timedelta(minutes=10)
    )
    assert requeue_lost_runs()["overdue"] == 0
    Run.objects.filter(pk=run.pk).update(due_at=long_ago)

    assert requeue_lost_runs()["overdue"] == 1
    run = wait_for_run(run.pk)
    assert run.status == Run.Status.SUCCEEDED and run.attempts == 2


def test_a_retry_message_that_comes_before_its_backoff_ends_is_dropped(runner_site):
    run = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RETRYING, attempts=1, due_at=timezone.now() + timedelta(minutes=10)
    )

    early = execute_tool(run.pk)  # a second copy of its message: sent again, or redelivered
    assert not early.executed
    run.refresh_from_db()
    assert run.status == Run.Status.RETRYING and run.attempts == 1

    Run.objects.filter(pk=run.pk).update(due_at=timezone.now())
    assert execute_tool(run.pk).run.result == {"sum": 5}


def test_a_run_the_broker_refused_long_ago_is_sent_once_not_twice(runner_site, celery_worker):
    run = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    Run.objects.filter(pk=run.pk).update(unsent=True, queued_at=timezone.now() - timedelta(hours=2))

    assert requeue_lost_runs() == {"requeued": 0, "failed": 0, "sent": 1, "unsent": 0, "overdue": 0}
    assert wait_for_run(run.pk).attempts == 1


# Down (connections refused), or hung (connections taken, nothing answered: a frozen Redis, where the
# publish waited for ever before CELERY_BROKER_TIMEOUT bounded it).
@pytest.mark.parametrize(
    ("broker", "why"), [("dead_broker", "Error 111 connecting to"), ("frozen_broker", "Timeout reading from")]
)
def test_exec_gives_up_when_the_broker_does_not_take_the_run_and_it_never_runs(request, runner_site, broker, why):
    done = runner_site.manage(
        "workers",
        "exec",
        "add",
        "--worker",
        "runner-test",
        "--input",
        '{"a": 2, "b": 3}',
        CELERY_BROKER_URL=request.getfixturevalue(broker),
        timeout=60,
    )

    assert done.returncode == 1
    # The log's warning, then the command's one-line error: no traceback.
    assert "Traceback" not in done.stderr, done.stderr
    run = Run.objects.get()
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"CommandError: The broker did not take run #{run.pk} (OperationalError: {why}")
    )
    assert "so it was cancelled before it ran" in done.stderr and "--local" in done.stderr
    # Cancelled, not left to run behind the back of someone told to run it another way.
    assert run.status == Run.Status.CANCELLED and run.attempts == 0
    assert requeue_lost_runs() == {"requeued": 0, "failed": 0, "sent": 0, "unsent": 0, "overdue": 0}


SEND_THEN_FREEZE = """
import os, signal
from connections.runner.tools import start_tool
before = start_tool("runner-test", "add", {"a": 1, "b": 1}, trigger="test")
os.kill(int(os.environ["BROKER_PID"]), signal.SIGSTOP)
after = start_tool("runner-test", "add", {"a": 2, "b": 2}, trigger="test")
print(before.unsent, after.unsent)
"""


def test_a_process_already_connected_to_the_broker_gives_up_on_it_when_it_hangs_too(runner_site, tmp_path):
    """As a web server's process is: its pooled connection stays open while the server stops answering."""
    broker = PrivateRedis(tmp_path / "redis")
    try:
        done = runner_site.manage(
            "shell",
            "-v",
            "0",
            "-c",
            SEND_THEN_FREEZE,
            CELERY_BROKER_URL=broker.url,
            BROKER_PID=str(broker.proc.pid),
            timeout=60,
        )
    finally:
        broker.stop()

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]  # sent while it answered; kept, marked not sent, after
    assert list(Run.objects.order_by("pk").values_list("unsent", flat=True)) == [False, True]


def test_sync_run_gives_up_at_once_too_and_the_sync_is_free_for_the_next_run(runner_site, dead_broker):
    done = runner_site.manage(
        "workers", "sync", "run", "pagesSync", "--worker", "runner-test", CELERY_BROKER_URL=dead_broker
    )

    assert done.returncode == 1 and done.stdout == ""  # not "queued...": nothing was
    run = Run.objects.get()
    assert done.stderr.strip().splitlines()[-1].startswith(f"CommandError: The broker did not take run #{run.pk} (")
    assert run.status == Run.Status.CANCELLED and run.attempts == 0
    # What the message suggests works at once: the cancelled run holds nothing.
    here = runner_site.manage("workers", "sync", "run", "pagesSync", "--worker", "runner-test", "--local")
    assert here.returncode == 0, here.stderr
    assert Run.objects.filter(status=Run.Status.SUCCEEDED, trigger="cli-local").count() == 1


POST_A_WEBHOOK = """
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
answer = Client().post(
    "/webhooks/runner-test/checked/", b'{"n": 1}', content_type="application/json", HTTP_X_TOKEN="let-me-in"
)
print(answer.status_code, answer.content.decode())
"""


@pytest.mark.parametrize("broker", ["dead_broker", "frozen_broker"])
def test_a_webhook_event_taken_while_the_broker_is_down_is_handled_once_it_answers(
    request, runner_site, celery_worker, broker
):
    # Down (refused) or hanging (accepts, never answers): either way the sender gets its answer.
    url = request.getfixturevalue(broker)
    done = runner_site.manage("shell", "-v", "0", "-c", POST_A_WEBHOOK, CELERY_BROKER_URL=url, timeout=60)

    assert done.returncode == 0, done.stderr
    status, _, body = done.stdout.strip().splitlines()[-1].partition(" ")
    assert status == "202"  # stored: the sender need not send it again
    answer = json.loads(body)
    run = Run.objects.get(pk=answer["run"])
    assert run.status == Run.Status.QUEUED and run.unsent and run.webhook_event_id == answer["event"]
    assert "did not take its message" in done.stderr and "let-me-in" not in done.stderr
    assert requeue_lost_runs()["sent"] == 1
    run = wait_for_run(run.pk)
    assert run.status == Run.Status.SUCCEEDED and run.result == {"ok": True} and not run.unsent
    assert Run.objects.filter(webhook_event_id=answer["event"]).count() == 1


# A staff member's POST in the admin, made in a process whose broker is down; prints the answer's
# status and its messages, one a line.
IN_THE_ADMIN = """
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
client.force_login(get_user_model().objects.get(username="broker-test"))
answer = client.post({path!r}, {data!r}, follow=True)
print(answer.status_code, *[f"{{m.level_tag}}: {{m.message}}" for m in answer.context["messages"]], sep="\\n")
"""


def post_in_the_admin(site, broker: str, path: str, data: dict) -> tuple[str, list[str]]:
    """`data` posted to `path` by the superuser "broker-test", with the broker at `broker`."""
    get_user_model().objects.create_superuser("broker-test", "broker@example.test", "pw")
    posted = IN_THE_ADMIN.format(path=path, data=data)
    done = site.manage("shell", "-v", "0", "-c", posted, CELERY_BROKER_URL=broker)
    assert done.returncode == 0, done.stderr
    status, *shown = done.stdout.strip().splitlines()
    return status, shown


def test_a_run_queued_in_the_admin_while_the_broker_is_down_warns_and_runs_once_it_answers(
    runner_site, celery_worker, client, dead_broker
):
    tool = Tool.objects.get(worker__slug="runner-test", key="add")
    status, shown = post_in_the_admin(
        runner_site, dead_broker, f"/admin/connections/tool/{tool.pk}/run/", {"a": "2", "b": "3"}
    )

    run = Run.objects.get()
    assert status == "200" and run.unsent and run.status == Run.Status.QUEUED
    # A warning instead of "queued as run #N": nothing will run until the broker answers.
    assert len(shown) == 1
    assert shown[0].startswith(f"warning: Run #{run.pk} is recorded, but the broker did not take it (")
    client.force_login(get_user_model().objects.get(username="broker-test"))
    assert "Not sent yet: the broker refused its message" in client.get("/admin/connections/run/").text
    # The broker answers again (this process's is up): the beat task sends it, a worker runs it once.
    assert requeue_lost_runs() == {"requeued": 0, "failed": 0, "sent": 1, "unsent": 0, "overdue": 0}
    run = wait_for_run(run.pk)
    assert run.status == Run.Status.SUCCEEDED and run.result == {"sum": 5} and run.attempts == 1
    assert not run.unsent


def test_run_now_on_several_syncs_stops_at_the_first_the_broker_did_not_take(runner_site, dead_broker):
    chosen = Sync.objects.filter(worker__slug="runner-test", key__in=["pagesSync", "snapshotSync"]).order_by("pk")
    run_now = {"action": "run_now", "_selected_action": [sync.pk for sync in chosen]}
    status, shown = post_in_the_admin(runner_site, dead_broker, "/admin/connections/sync/", run_now)

    run = Run.objects.get()  # the second sync was not started: it would only have waited out the broker too
    assert status == "200" and run.unsent and run.status == Run.Status.QUEUED
    # One warning, and no "Queued 0 sync runs." beside it.
    assert len(shown) == 1 and shown[0].startswith(f"warning: Run #{run.pk} is recorded, but the broker did not take")
    assert shown[0].endswith("The syncs after it were not started.")
