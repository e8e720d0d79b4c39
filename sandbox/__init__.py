"""The sandbox OAuth provider: django-oauth-toolkit plus a small protected API, for offline use and tests."""
