"""The app's URLs: `/oauth/callback/`, `/webhooks/<worker>/<webhook>/`, `/healthz`."""

from django.urls import path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
