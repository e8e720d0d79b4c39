"""The guide's GitHub example: repositories as a tool, issues as a sync."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, builder, j, schema

worker = Worker("github")

github_auth = worker.oauth(
    "githubAuth",
    name="github-oauth",
    authorization_endpoint="https://github.com/login/oauth/authorize",
    token_endpoint="https://github.com/login/oauth/access_token",
    scope="repo user",
    client_id=worker.env("GITHUB_CLIENT_ID"),
    client_secret=worker.env("GITHUB_CLIENT_SECRET"),
)


@worker.tool(
    "getGitHubRepos",
    title="Get GitHub repos",
    description="Fetch the user's GitHub repositories",
    schema=j.object({}),
    hints={"read_only": True},
)
def get_repos(input: dict[str, Any], context: Any) -> Any:
    response = github_auth.session().get("https://api.github.com/user/repos", timeout=15)
    response.raise_for_status()
    return response.json()


issues = worker.database(
    "issues",
    title="GitHub issues",
    primary_key="Issue ID",
    properties={"Title": schema.title(), "Issue ID": schema.rich_text()},
)


@worker.sync("githubIssuesSync", database=issues, schedule="manual", mode="replace")
def sync_issues(state: Any, context: Any) -> dict[str, Any]:
    response = github_auth.session().get("https://api.github.com/issues", timeout=15)
    response.raise_for_status()
    return {
        "changes": [
            {
                "type": "upsert",
                "key": str(issue["id"]),
                "properties": {"Title": builder.title(issue["title"]), "Issue ID": builder.rich_text(str(issue["id"]))},
            }
            for issue in response.json()
        ],
        "has_more": False,
    }


@worker.webhook(
    "githubEvents",
    signature={
        "secret": worker.env("GITHUB_WEBHOOK_SECRET"),
        "header": "X-Hub-Signature-256",
        "algorithm": "sha256",
        "prefix": "sha256=",
    },
)
def on_event(event: Any, context: Any) -> dict[str, Any]:
    return {"event": event.headers.get("x-github-event", ""), "action": event.body.get("action", "")}
