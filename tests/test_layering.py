"""The team's layering, checked on every import: no new upward import can creep in unnoticed.

core (prover/: the Lean pool, model backends, prompts, profiles, datasets, config) knows nothing of
search/, server/ or the applications; search/ builds on the core; server/ on both; applications
(apps/, and the few application modules that still live in prover/, listed below) sit on top and
are the only code that may import across all of them. Every `import` counts, function-local and
`if TYPE_CHECKING:` ones included: a late import hides a dependency, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("prover", "search", "server", "apps")

CORE, SEARCH, SERVER, APPLICATION = range(4)
LAYER_NAMES = {CORE: "core", SEARCH: "search", SERVER: "server", APPLICATION: "application"}

# Today's known exceptions: application modules that live inside the core package `prover`
# (for the `prover` console script's sake) and so import upward. Each is an application, may
# import any layer, and no core, search or server module may import it. Moving one to apps/ is
# the real fix; until then a NEW module importing upward from prover/ has to be named here, on
# purpose, in review. The rest of prover/evaluation (plan, report, store) imports only the
# core and must stay so, though importing it runs the package's __init__, which loads the runner.
APPLICATIONS_IN_CORE = {
    "prover.__main__": "`python -m prover`: runs the CLI",
    "prover.cli": "the CLI: starts servers and workers (server.app, server.worker), the MCP "
                  "server (apps.mcp_server.command), runs searches",
    "prover.fill": "`prover fill`: fills `sorry`s with search.complete",
    "prover.evaluation": "`prover eval`'s package: re-exports the runner",
    "prover.evaluation.runner": "the batch evaluator: runs search.loop over a dataset",
    "prover.evaluation.distributed": "the evaluator's jobs on the service's queue (server.jobs, "
                                     "server.worker)",
    "prover.dojo": "the LeanDojo-compatible client (imports only the core today)",
}
# Not seen by this test: server/worker.py loads the job kinds of prover.evaluation.distributed
# (an application) by name at worker start (HANDLER_MODULES, importlib) - a plugin registration
# that keeps server/ from importing it, known and allowed.


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def layer(module: str) -> int:
    if module in APPLICATIONS_IN_CORE or module.startswith("apps"):
        return APPLICATION
    top = module.partition(".")[0]
    return {"search": SEARCH, "server": SERVER}.get(top, CORE)


def parse(path: Path, *, runtime_only: bool = False) -> ast.Module:
    """The module's syntax tree; with runtime_only, without its `if TYPE_CHECKING:` blocks
    (imports for annotations, which never run)."""
    tree = ast.parse(path.read_text(), str(path))
    if runtime_only:
        for node in ast.walk(tree):
            if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                    and node.test.id == "TYPE_CHECKING"):
                node.body = [ast.Pass()]
    return tree


def imported_modules(module: str, path: Path, known: set[str], *,
                     runtime_only: bool = False) -> set[str]:
    """The project modules `module` imports anywhere in its body (the most specific known name:
    `from server import jobs` is server.jobs, `from prover.lean import Pool` is prover.lean)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(parse(path, runtime_only=runtime_only)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imported_modules(module, path, known) for module, path in modules.items()}


def test_the_graph_sees_the_imports_it_should() -> None:
    """The parser itself: a function-local import, a `from package import module`, and a
    relative import are all edges (a checker that saw none would pass everything)."""
    graph = import_graph()
    assert "server.app" in graph["prover.cli"]  # imported inside a function
    assert "server.jobs" in graph["server.worker"]  # `from server.jobs import ...`
    assert "apps.mcp_server.backends" in graph["apps.mcp_server.server"]
    assert len(graph) > 80


def test_relative_imports_resolve_from_their_package(tmp_path: Path) -> None:
    """No module uses them today; one that does must still be checked."""
    source = tmp_path / "fill_job.py"
    source.write_text("def f():\n    from ..mcp_server import backends\n"
                      "    from . import roots\n    from .. import mcp_server\n")
    known = {"apps", "apps.mcp_server", "apps.mcp_server.backends", "apps.mcp_server.roots"}
    assert imported_modules("apps.mcp_server.fill_job", source, known) == known - {"apps"}


def test_no_module_imports_a_layer_above_its_own() -> None:
    graph = import_graph()
    upward = sorted(
        f"{module} ({LAYER_NAMES[layer(module)]}) imports {target} "
        f"({LAYER_NAMES[layer(target)]})"
        for module, targets in graph.items() for target in targets
        if layer(target) > layer(module))
    assert not upward, (
        "imports that break the layering (core < search < server < applications):\n  "
        + "\n  ".join(upward)
        + "\nmove the shared piece down a layer (or pass it in); an application module that "
          "must live in prover/ goes into APPLICATIONS_IN_CORE with a reason")


@pytest.mark.parametrize("module", sorted(APPLICATIONS_IN_CORE))
def test_the_allowlist_names_modules_that_exist(module: str) -> None:
    assert module in project_modules(), (
        f"{module} is in APPLICATIONS_IN_CORE but no longer exists: remove it from the list")


def test_no_import_cycles_outside_type_checking() -> None:
    """A cycle of imports that run (function-local ones included) ties two modules into one;
    `if TYPE_CHECKING:` imports for annotations are left out (they never run)."""
    modules = project_modules()
    known = set(modules)
    graph = {module: imported_modules(module, path, known, runtime_only=True)
             for module, path in modules.items()}
    cycles = _cycles(graph)
    assert not cycles, (
        "import cycles:\n  " + "\n  ".join(" -> ".join(cycle) for cycle in cycles)
        + "\nbreak each by moving the shared piece into a module both can import, or, for a "
          "type only, by importing it under `if TYPE_CHECKING:`")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(group)) for group in groups]


def _one_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    start = min(group)
    path, seen = [start], {start}
    while True:
        nxt = sorted(target for target in graph[path[-1]] if target in group)
        back = [target for target in nxt if target in seen]
        if back:
            return [*path[path.index(back[0]):], back[0]]
        path.append(next(target for target in nxt if target not in seen))
        seen.add(path[-1])
