"""The app's URLs: `/oauth/callback/`, `/webhooks/<worker>/<webhook>/`, `/healthz`, `/metrics`."""

from django.urls import path

from . import metrics, views
from .oauth import views as oauth_views
from .runner import views as runner_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("webhooks/<slug:worker>/<str:webhook>/", runner_views.webhook, name="webhook"),
    path("oauth/callback/", oauth_views.callback, name="oauth-callback"),
]
