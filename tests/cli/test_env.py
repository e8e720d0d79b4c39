"""`workers env set | list | unset`: secrets stored encrypted, names listed, values never printed."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from connections.models import Secret

from .conftest import PUBLIC_URL, workers

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployed() -> None:
    workers("deploy")


def secret(worker: str, name: str) -> str:
    return Secret.objects.get(worker__slug=worker, name=name).value


def test_set_finds_the_worker_that_refers_to_the_name(deployed):
    out = workers("env", "set", "GITHUB_CLIENT_ID=abc", "GITHUB_CLIENT_SECRET=s3cr3t=with=equals")
    assert out.splitlines() == [
        "Added GITHUB_CLIENT_ID for worker github.",
        "Added GITHUB_CLIENT_SECRET for worker github.",
    ]
    assert secret("github", "GITHUB_CLIENT_ID") == "abc"
    assert secret("github", "GITHUB_CLIENT_SECRET") == "s3cr3t=with=equals"

    assert workers("env", "set", "GITHUB_CLIENT_ID=xyz") == "Updated GITHUB_CLIENT_ID for worker github.\n"
    assert secret("github", "GITHUB_CLIENT_ID") == "xyz"


def test_list_shows_names_and_missing_ones_but_never_values(deployed):
    workers("env", "set", "GITHUB_CLIENT_ID=abc-value-123")
    out = workers("env", "list", "--worker", "github")
    lines = out.splitlines()
    assert lines[0].startswith("GITHUB_CLIENT_ID\tset 20")
    assert "GITHUB_CLIENT_SECRET\tnot set (referenced by the worker)" in lines
    assert "GITHUB_WEBHOOK_SECRET\tnot set (referenced by the worker)" in lines
    assert "abc-value-123" not in out

    everything = workers("env", "list")
    assert "github:" in everything and "sandbox:" in everything
    assert "abc-value-123" not in everything


def test_dash_reads_the_value_from_stdin(deployed):
    out = workers("env", "set", "--worker", "github", "GITHUB_WEBHOOK_SECRET=-", stdin="from-stdin\n")
    assert out == "Added GITHUB_WEBHOOK_SECRET for worker github.\n"
    assert secret("github", "GITHUB_WEBHOOK_SECRET") == "from-stdin"

    workers("env", "set", "GITHUB_WEBHOOK_SECRET=-", stdin="-----BEGIN KEY-----\nline two\r\n")
    assert secret("github", "GITHUB_WEBHOOK_SECRET") == "-----BEGIN KEY-----\nline two"


def test_unset_removes(deployed):
    workers("env", "set", "GITHUB_CLIENT_ID=abc")
    assert workers("env", "unset", "GITHUB_CLIENT_ID") == "Removed GITHUB_CLIENT_ID from worker github.\n"
    assert not Secret.objects.filter(name="GITHUB_CLIENT_ID").exists()


@pytest.mark.parametrize(
    ("args", "stdin", "reason"),
    [
        (["env", "set", "GITHUB_CLIENT_ID"], None, "'GITHUB_CLIENT_ID' is not K=V."),
        (["env", "set", "GITHUB_CLIENT_ID="], None, "GITHUB_CLIENT_ID has an empty value"),
        (["env", "set", "GITHUB_CLIENT_ID=-"], "", "GITHUB_CLIENT_ID has an empty value"),
        (["env", "set", "A=-", "B=-"], "x", "Only one K=- may read its value from stdin."),
        (["env", "set", "--worker", "github", "1ABC=x"], None, "'1ABC' is not a valid secret name"),
        (["env", "set", "--worker", "nope", "A=x"], None, "No deployed worker 'nope'"),
        (["env", "set", "UNKNOWN_NAME=x"], None, "No worker refers to UNKNOWN_NAME: pass --worker."),
        (["env", "list", "--worker", "nope"], None, "No deployed worker 'nope'"),
        (["env", "unset", "--worker", "github", "NEVER_SET"], None, "Worker github has no secret(s) NEVER_SET."),
    ],
)
def test_failures_are_command_errors_with_a_reason(deployed, args, stdin, reason):
    with pytest.raises(CommandError) as exc:
        workers(*args, stdin=stdin)
    assert reason in str(exc.value)
    assert not Secret.objects.exists()


def test_before_deploy_there_is_no_worker_to_hold_a_secret():
    with pytest.raises(CommandError, match=r"No deployed worker: run `python manage.py workers deploy` first."):
        workers("env", "set", "GITHUB_CLIENT_ID=abc")


# --- real processes -------------------------------------------------------------------------


def test_the_acceptance_chain_in_real_processes(manage):
    """`workers deploy && workers env set GITHUB_CLIENT_ID=abc && workers env list && workers oauth show-redirect-url`."""
    deployed = manage("workers", "deploy")
    assert deployed.returncode == 0, deployed.stderr
    assert "+ OAuth capability github:githubAuth" in deployed.stdout

    stored = manage("workers", "env", "set", "GITHUB_CLIENT_ID=abc")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout == "Added GITHUB_CLIENT_ID for worker github.\n"

    listed = manage("workers", "env", "list")
    assert listed.returncode == 0, listed.stderr
    assert "GITHUB_CLIENT_ID\tset " in listed.stdout
    assert "abc" not in listed.stdout + listed.stderr

    redirect = manage("workers", "oauth", "show-redirect-url")
    assert redirect.returncode == 0, redirect.stderr
    assert redirect.stdout == f"{PUBLIC_URL}/oauth/callback/\n"

    # What the child processes stored, this process reads back (same database, same key).
    assert secret("github", "GITHUB_CLIENT_ID") == "abc"


def test_stdin_value_in_a_real_process(manage):
    assert manage("workers", "deploy").returncode == 0
    result = manage("workers", "env", "set", "GITHUB_CLIENT_SECRET=-", stdin="piped-secret-value\n")
    assert result.returncode == 0, result.stderr
    assert "piped-secret-value" not in result.stdout + result.stderr
    assert secret("github", "GITHUB_CLIENT_SECRET") == "piped-secret-value"


def test_failures_in_a_real_process_exit_non_zero_with_one_line(manage):
    manage("workers", "env", "set", "GITHUB_CLIENT_ID=abc").assert_failed_with(
        "No deployed worker: run `python manage.py workers deploy` first."
    )
    assert manage("workers", "deploy").returncode == 0
    manage("workers", "env", "set", "UNKNOWN_NAME=x").assert_failed_with("No worker refers to UNKNOWN_NAME")
    manage("workers", "env", "set", "GITHUB_CLIENT_ID=").assert_failed_with("GITHUB_CLIENT_ID has an empty value")
    manage("workers", "env", "unset", "--worker", "github", "NEVER_SET").assert_failed_with(
        "Worker github has no secret(s) NEVER_SET."
    )


def test_pull_replaces_export_lines_instead_of_duplicating_them(deployed, tmp_path):
    # django-environ reads `export NAME=value`; a pull must replace such a line, not add a second
    # NAME (which one wins would then depend on the reader).
    workers("env", "set", "GITHUB_CLIENT_ID=fresh-id-123")
    target = tmp_path / ".env"
    target.write_text("# kept\nexport GITHUB_CLIENT_ID=stale\nexport OTHER=kept\n")

    workers("env", "pull", "--worker", "github", "--file", str(target))

    lines = target.read_text().splitlines()
    assert [line for line in lines if "GITHUB_CLIENT_ID" in line] == ["GITHUB_CLIENT_ID=fresh-id-123"]
    assert "# kept" in lines and "export OTHER=kept" in lines
