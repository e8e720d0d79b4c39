"""Provider presets: endpoints and quirks of the providers in the Notion Workers guide."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Provider:
    slug: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str = ""
    authorization_params: dict[str, str] = field(default_factory=dict)
    # Providers that omit expires_in: how long a token lives, in milliseconds.
    access_token_expire_ms: int | None = None
    pkce: bool = True
    # Endpoints are paths on this site (the sandbox provider); deploy prefixes PUBLIC_URL.
    site_relative: bool = False


PROVIDERS: dict[str, Provider] = {
    # GitHub answers form-encoded unless asked for JSON, and reports errors with HTTP 200.
    # Its token revocation is not RFC 7009, so no revocation endpoint.
    "github": Provider(
        slug="github",
        authorization_endpoint="https://github.com/login/oauth/authorize",
        token_endpoint="https://github.com/login/oauth/access_token",
    ),
    # Google returns a refresh token only with access_type=offline (and prompt=consent on
    # re-consent), and its refresh responses carry no new refresh token.
    "google": Provider(
        slug="google",
        authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
        token_endpoint="https://oauth2.googleapis.com/token",
        revocation_endpoint="https://oauth2.googleapis.com/revoke",
        authorization_params={"access_type": "offline", "prompt": "consent"},
    ),
    # Salesforce sends no expires_in; its sessions default to two hours, so assume one.
    "salesforce": Provider(
        slug="salesforce",
        authorization_endpoint="https://login.salesforce.com/services/oauth2/authorize",
        token_endpoint="https://login.salesforce.com/services/oauth2/token",
        revocation_endpoint="https://login.salesforce.com/services/oauth2/revoke",
        access_token_expire_ms=3_600_000,
    ),
    "sandbox": Provider(
        slug="sandbox",
        authorization_endpoint="/sandbox/o/authorize/",
        token_endpoint="/sandbox/o/token/",
        revocation_endpoint="/sandbox/o/revoke_token/",
        site_relative=True,
    ),
}


def get_provider(slug: str) -> Provider | None:
    return PROVIDERS.get(slug)
