"""App config."""

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox OAuth provider"
    default_auto_field = "django.db.models.BigAutoField"
