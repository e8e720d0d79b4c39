"""The admin, one module per concern; importing them registers the model admins."""

from . import mcp, oauth, pacers, runner, workers  # noqa: F401
