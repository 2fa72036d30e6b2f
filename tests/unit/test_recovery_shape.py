"""The recovery app's shape (issue 12), read from its source: no import cycle among its modules,
no module reaching for another's private names, and one place that writes a case's changes —
:func:`fapiao.recovery.transitions.transition` (lock, version, timeline event, audit record)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

RECOVERY = Path(__file__).resolve().parents[2] / "src" / "fapiao" / "recovery"
PACKAGE = "fapiao.recovery"
# Writing a case's timeline or its audit record, or bumping its version, by hand.
WRITES = (
    r"\badd_event\(",
    r"CaseEvent\.objects\.(create|bulk_create)",
    r"[=(]\s*CaseEvent\(",
    r"\.version \+= 1",
    r'action=f?"case\.',
)


def _modules(root: Path) -> dict[str, ast.Module]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join((PACKAGE, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imports(tree: ast.Module, modules: dict[str, ast.Module]) -> list[tuple[str, str]]:
    """(module, name) of every ``from fapiao… import name``, at any depth of the module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fapiao."):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                found.append((target if target in modules else node.module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("fapiao.")]
    return found


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    return seen


def import_cycles(root: Path) -> list[list[str]]:
    """The groups of modules that import each other, directly or round about."""
    modules = _modules(root)
    graph = {name: {m for m, _n in _imports(tree, modules) if m in modules} for name, tree in modules.items()}
    reach = {name: _reach(graph, name) for name in graph}
    groups = {frozenset(m for m in reach[name] if name in reach[m]) for name in graph if name in reach[name]}
    return sorted(sorted(group) for group in groups)


def private_imports(root: Path) -> list[str]:
    modules = _modules(root)
    return [
        f"{name} imports {module}.{imported}"
        for name, tree in modules.items()
        for module, imported in _imports(tree, modules)
        if imported.startswith("_") and not imported.startswith("__") and imported != "_"
    ]


# The remedies write an invoice row through the invoices app's private helpers until there is one
# service for every invoice row (issue 12, branch ``remedy``): delete this line with that change.
NOT_YET = {
    "fapiao.recovery.remedies imports fapiao.invoices.services._" + name
    for name in ("buyer_data", "create_invoice", "seal_buyer")
}


def hand_written_changes(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}: {write}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "transitions.py" and "migrations" not in path.parts
        for write in WRITES
        if re.search(write, path.read_text())
    ]


def test_no_import_cycle_among_the_recovery_modules():
    assert import_cycles(RECOVERY) == []


def test_no_recovery_module_imports_another_ones_private_names():
    assert set(private_imports(RECOVERY)) - NOT_YET == set()


def test_every_case_change_is_written_by_transition():
    assert hand_written_changes(RECOVERY) == []
