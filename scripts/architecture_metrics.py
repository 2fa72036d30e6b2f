"""Count what docs/architecture.md reports about the shape of the code.

    python scripts/architecture_metrics.py [SRC]     (SRC defaults to src/fapiao)

Prints: packages that import each other (mutual pairs), import cycles between modules (strongly
connected components of the module graph, imports inside functions included), imports inside
functions outside ``apps.py``/``cli.py``, and modules over 300 lines (migrations excluded).
Standard library only, so it runs on any checkout, old or new.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

LONG = 300


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(node: ast.Import | ast.ImportFrom, me: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = me.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "src/fapiao").resolve()
    files = [p for p in root.rglob("*.py") if "migrations" not in p.parts]
    modules = {module_name(root, p): p for p in files}
    graph: dict[str, set[str]] = defaultdict(set)
    local_imports: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            nested = id(node) not in top and not _in_top_level_block(tree, node)
            for target in imported(node, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    graph[name].add(target)
            if nested and path.name not in {"apps.py", "cli.py"}:
                local_imports.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    package = {m: (m.split(".")[1] if m.count(".") else m) for m in modules}
    arrows = {(package[a], package[b]) for a in graph for b in graph[a] if package[a] != package[b]}
    mutual = sorted({tuple(sorted(pair)) for pair in arrows if (pair[1], pair[0]) in arrows})
    cycles = [c for c in _components(graph, list(modules)) if len(c) > 1]
    long_modules = sorted((len(p.read_text().splitlines()), str(p.relative_to(root.parent))) for p in files)
    long_modules = [(n, p) for n, p in long_modules if n > LONG]
    print(f"mutual package pairs: {len(mutual)} {mutual}")
    print(f"import cycles: {len(cycles)}")
    for cycle in cycles:
        print("  " + " <-> ".join(sorted(cycle)))
    print(f"imports inside functions (outside apps.py, cli.py): {len(local_imports)}")
    print(f"modules over {LONG} lines: {len(long_modules)}")
    for lines, path in reversed(long_modules):
        print(f"  {lines:5d} {path}")
    return 0


def _in_top_level_block(tree: ast.Module, node: ast.AST) -> bool:
    """An import under a top-level ``if``/``try`` (e.g. TYPE_CHECKING) is still module level."""
    for statement in tree.body:
        if isinstance(statement, ast.If | ast.Try) and node in ast.walk(statement):
            return not any(
                isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and node in ast.walk(inner)
                for inner in ast.walk(statement)
            )
    return False


def _components(graph: dict[str, set[str]], nodes: list[str]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
