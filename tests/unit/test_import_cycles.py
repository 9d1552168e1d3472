"""No import cycle at run time in lab/ (issue 13): modules that import each other at
module level make the import order matter and break when one of them changes.

Imports inside functions and under ``if TYPE_CHECKING:`` do not count (they run later
or never); ``from . import sub`` of a module's own package does not either (the
package is mid-import and runs its own imports).
"""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "lab"


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    mods = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if pkg else parts)] = (p, pkg)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level_imports(part)


def import_graph(root: Path) -> dict[str, set[str]]:
    mods = _modules(root)
    graph = {}
    for name, (path, pkg) in mods.items():
        deps = set()
        for node in _module_level_imports(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in mods)
                continue
            if node.level:
                base = name.split(".") if pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
            deps.update(subs)
            if target in mods and len(subs) < len(node.names):
                deps.add(target)  # names the module itself must define by now
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_module_of_lab_is_in_an_import_cycle_at_run_time():
    assert cycles(import_graph(LAB)) == []


def test_the_check_finds_a_cycle_and_ignores_deferred_imports(tmp_path):
    pkg = tmp_path / "lab" / "svc"
    pkg.mkdir(parents=True)
    (tmp_path / "lab" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .broker import Broker\n")
    (pkg / "broker.py").write_text("from .server import serve\nclass Broker: ...\n")
    (pkg / "server.py").write_text("from .handlers import handle\ndef serve(): ...\n")
    (pkg / "handlers.py").write_text("from lab.svc.broker import Broker\ndef handle(): ...\n")
    (pkg / "late.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .other import X\n"
        "def f():\n    from .other import X\n"
    )
    (pkg / "other.py").write_text("from . import late\nX = 1\n")
    found = cycles(import_graph(tmp_path / "lab"))
    assert found == [["lab.svc.broker", "lab.svc.handlers", "lab.svc.server"]]
