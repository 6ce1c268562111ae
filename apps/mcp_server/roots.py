"""Which files `fill_sorries` may touch: only those under the roots the user named at start.

An agent's arguments are untrusted text (a prompt injection in a file it read can steer it), so
a path is resolved the way the file system will resolve it (symbolic links followed) before it
is compared with the roots: `root/../../etc/passwd` or a link out of the root is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class PathRefused(ValueError):
    """The path is not one this server may write; the message says why and what to do."""


class AllowedRoots:
    def __init__(self, roots: Iterable[str | Path]) -> None:
        self.roots = tuple(Path(r).expanduser().resolve() for r in roots)

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots) or "none"

    def check(self, path: str) -> Path:
        """The resolved path of an existing `.lean` file under a root, or `PathRefused`."""
        if not self.roots:
            raise PathRefused(
                "this server was started without --allow-root, so it touches no files: pass "
                "the file's text as `text` instead, or restart it with `prover mcp --allow-root "
                "DIR` (`prover serve --mcp-allow-root DIR`)")
        given = Path(path).expanduser()
        if not given.is_absolute():
            given = self.roots[0] / given
        resolved = given.resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise PathRefused(
                f"{path} is outside the allowed roots ({self.describe()}); this server only "
                "touches files under them: pass the text instead, or restart it with "
                "--allow-root for that directory")
        if resolved.suffix != ".lean":
            raise PathRefused(f"{path} is not a .lean file")
        if not resolved.is_file():
            raise PathRefused(f"{path}: no such file (resolved to {resolved})")
        return resolved
