"""DESIGN's dependency direction: the core modules never reach up or sideways into each other."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mcja_hub"

# module -> package modules it must not import (anything of mcja_hub not listed is allowed)
FORBIDDEN = {
    "models": {"augment", "losses", "evaluation", "data", "hub", "cli", "viz", "layouts"},
    "augment": {"models", "losses", "evaluation", "data", "hub", "cli", "viz"},
    "losses": {"models", "augment", "evaluation", "data", "hub", "cli", "viz"},
    "layouts": {"models", "augment", "losses", "evaluation", "data", "hub", "cli", "viz"},
    "evaluation": {"models", "losses", "data", "hub", "cli", "viz"},  # uses augment's public eval transform
    "data": {"models", "losses", "evaluation", "hub", "cli", "viz"},
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
    assert package_imports(PKG / "evaluation" / "protocols.py") >= {"layouts"}
    assert package_imports(PKG / "data" / "builder.py") >= {"layouts"}
