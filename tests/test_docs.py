"""The docs point at files that exist: a moved module must not leave the README or a link behind."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/method.md", "model_cards/README.md"]
TOP = ("mcja_hub", "recipes", "benchmarks", "docs", "tests", "model_cards", ".ci")  # folders of this repository


def referenced_paths(text: str) -> set[str]:
    """Repository paths in `code` spans (under one of TOP) and the targets of relative markdown links."""
    code = {t for t in re.findall(r"`([\w./-]+)`", text) if t.split("/")[0] in TOP and "/" in t}
    links = set(re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", text))
    return code | links


def test_referenced_paths_exist():
    missing = []
    for doc in DOCS:
        for ref in referenced_paths((ROOT / doc).read_text()):
            base = ROOT if ref.split("/")[0] in TOP else (ROOT / doc).parent
            if not (base / ref).exists():
                missing.append(f"{doc}: {ref}")
    assert not missing, missing


def test_referenced_paths_finds_what_it_should():
    refs = referenced_paths("see `mcja_hub/data/catalog.py`, `idx/test_id.txt`, [m](docs/method.md), [w](https://x.org)")
    assert refs == {"mcja_hub/data/catalog.py", "docs/method.md"}


def test_symlinks_resolve():
    links = [p for top in TOP if (ROOT / top).is_dir() for p in (ROOT / top).rglob("*") if p.is_symlink()]
    broken = [str(p.relative_to(ROOT)) for p in links if not p.exists()]
    assert not broken, broken
