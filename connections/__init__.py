"""Connections: workers, their secrets, OAuth connections, and the runner for tools, syncs and webhooks."""
