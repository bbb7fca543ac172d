"""DESIGN's dependency direction: the core modules never reach up or sideways into each other."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mcja_hub"

# module -> package modules it must not import (anything of mcja_hub not listed is allowed)
TOP = {"hub", "cli", "viz", "search", "export"}
FORBIDDEN = {
    "models": {"augment", "losses", "evaluation", "data"} | TOP,
    "augment": {"models", "losses", "evaluation", "data"} | TOP,
    "losses": {"models", "augment", "evaluation", "data"} | TOP,
    "evaluation": {"models", "losses"} | TOP,  # uses augment's eval transform and data's readers / trials / table
    "data": {"models", "losses", "evaluation", "augment"} | TOP,
}


def package_imports(path: Path) -> set[str]:
    """Top-level mcja_hub modules a file imports (absolute or relative)."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PKG).parts) - 1  # how deep below mcja_hub/ the file sits
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mcja_hub.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("mcja_hub."):
                found.add(node.module.split(".")[1])
            elif node.level > depth:  # climbs out of its own subpackage to the package root
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found |= {a.name for a in node.names}
    return found


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_dependency_direction(module):
    files = sorted((PKG / module).rglob("*.py")) if (PKG / module).is_dir() else [PKG / f"{module}.py"]
    assert files
    for f in files:
        bad = package_imports(f) & FORBIDDEN[module]
        assert not bad, f"{f.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_checker_sees_relative_imports():
    assert package_imports(PKG / "evaluation" / "metrics.py") >= {"data"}
    assert package_imports(PKG / "search.py") >= {"data", "evaluation"}


def _module_graph() -> dict[str, set[str]]:
    """mcja_hub module -> the mcja_hub modules it imports anywhere in its file (function bodies too)."""
    files = {".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in PKG.rglob("*.py")}
    graph = {}
    for name, f in files.items():
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def test_no_import_cycle_inside_the_package():
    graph = _module_graph()
    assert graph["mcja_hub.data.builder"] >= {"mcja_hub.data.catalog"}  # the parser resolves relative imports
    assert "mcja_hub.data.catalog" in graph["mcja_hub.evaluation.rerank"]  # and imports inside functions
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_evaluation_never_needs_the_datasets_library():
    import subprocess
    import sys

    code = "import sys, mcja_hub.evaluation, mcja_hub.data; print('datasets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    for f in sorted((PKG / "evaluation").rglob("*.py")):
        tree = ast.parse(f.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert "datasets" not in names, f"{f} imports the datasets library"
