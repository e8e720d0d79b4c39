"""Site URLs: the admin, the OAuth callback, webhooks, health, and the sandbox provider."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # The site has no home page of its own: the admin's overview is it ("View site" comes here too).
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("connections.urls")),
]

if settings.SANDBOX_PROVIDER:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
