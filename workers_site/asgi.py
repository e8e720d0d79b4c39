"""ASGI entry point: `workers_site.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

application = get_asgi_application()

from connections.crypto import assert_keys_can_read  # noqa: E402

assert_keys_can_read()
