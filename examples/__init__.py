"""Example workers; WORKER_MODULES lists these by default."""
