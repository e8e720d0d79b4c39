"""The site as an MCP server: deployed tools and synced databases for agents, behind per-client API keys."""
