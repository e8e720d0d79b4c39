"""gunicorn's settings for this site: `gunicorn -c python:workers_site.gunicorn_conf`.

`workers serve` uses it; an operator's own command line may add to or override any of it.
gunicorn's own `asgi` worker runs the ASGI application: the MCP transport at /mcp/ needs ASGI
(streamed answers, cancellation when a client goes away), and Django's views run beside it in
threads, as many at once per process as WORKERS_WEB_THREADS (GUNICORN_THREADS), as gthread did.
Values come from the environment (GUNICORN_* below) so one file serves every machine.
"""

from __future__ import annotations

import os

from connections.logging import console_config

# These processes are the web server: their requests take PostgreSQL connections from a pool
# (WORKERS_DATABASE_POOL in workers_site/settings.py, read when the app loads, below).
os.environ["WORKERS_WEB_SERVER"] = "gunicorn"

wsgi_app = "workers_site.asgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "asgi"
# Open connections per process (idle keep-alives and MCP streams included); Django's share is bounded apart.
worker_connections = int(os.environ.get("GUNICORN_CONNECTIONS", "1000"))
# The lifespan starts the MCP session manager; "on": a failure to start it stops the server.
asgi_lifespan = "on"
# A burst waits in the kernel's queue instead of being reset (Django's development server keeps 10).
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
# SIGTERM: stop accepting, finish the requests in flight for up to this long, then exit.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 5
# One control socket per user by default: two sites (or test runs) on one machine would share it.
control_socket_disable = True
# The settings are read and the key checked once, before forking, not once per worker.
preload_app = True
accesslog = "-"
errorlog = "-"
# The path without its query string: the OAuth callback's query holds the authorization code.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# The site's logging shape, read before Django is, so LOG_FORMAT comes from the environment here.
logconfig_dict = console_config(
    "json" if os.environ.get("LOG_FORMAT", "").strip().lower() == "json" else "plain",
    loggers={
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
)
