"""`/sandbox/o/...` (django-oauth-toolkit) and `/sandbox/api/...` (the protected API)."""

from django.urls import include, path

from . import views

app_name = "sandbox"

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/me", views.me, name="me"),
    path("api/items", views.items, name="items"),
    path("api/flaky", views.flaky, name="flaky"),
]
