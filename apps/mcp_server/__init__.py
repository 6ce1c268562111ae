"""`prover mcp`: the prover as Model Context Protocol tools, for coding agents.

Agents (Claude Code, Cursor, Codex, ...) reach tools through MCP; this package offers verify,
prove, fill_sorries, complete, find_problem and explain_verdict, plus the datasets and jobs as
resources, over stdio (`prover mcp`, the tools run on a local pool and model) and over
streamable HTTP (`/mcp` of `prover serve`, the tools run on the service's pool and job queue,
behind its API keys and limits). See docs/mcp.md.

Only `server.py`, `mount.py` and `command.py` need the `mcp` SDK; the worker-side `fill` job
kind (`fill_job.py`) does not, so a worker without the extra still runs it.
"""
