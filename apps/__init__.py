"""Applications built on the core, the search and the service: the MCP server for agents."""
