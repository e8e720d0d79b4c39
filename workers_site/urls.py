"""Site URLs: the admin, the OAuth callback, webhooks, health, and the sandbox provider."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("connections.urls")),
]

if settings.SANDBOX_PROVIDER:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
