"""OAuth: the authorization-code flow, token exchange and refresh, and provider quirks."""
