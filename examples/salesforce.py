"""The guide's Salesforce example: no expires_in, so access_token_expire_ms decides."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, j

worker = Worker("salesforce")

salesforce_auth = worker.oauth(
    "salesforceAuth",
    name="salesforce-oauth",
    authorization_endpoint="https://login.salesforce.com/services/oauth2/authorize",
    token_endpoint="https://login.salesforce.com/services/oauth2/token",
    revocation_endpoint="https://login.salesforce.com/services/oauth2/revoke",
    scope="api refresh_token",
    client_id=worker.env("SALESFORCE_CLIENT_ID"),
    client_secret=worker.env("SALESFORCE_CLIENT_SECRET"),
    access_token_expire_ms=3_600_000,
)


@worker.tool(
    "querySalesforce",
    title="Query Salesforce",
    description="Run a SOQL query",
    schema=j.object({"soql": j.string("The SOQL query")}),
)
def query(input: dict[str, Any], context: Any) -> Any:
    instance = salesforce_auth.token_extra().get("instance_url", "")
    response = salesforce_auth.session().get(
        f"{instance}/services/data/v61.0/query", params={"q": input["soql"]}, timeout=30
    )
    response.raise_for_status()
    return response.json()
