"""App configs: the app, and the admin with its overview page."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = _("Workers and connections")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers checks and signal handlers)


class WorkersAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the overview as its index (see connections/adminsite.py).

    Named in INSTALLED_APPS in place of "django.contrib.admin"; never this app's own config."""

    default = False

    default_site = "connections.adminsite.WorkersAdminSite"
