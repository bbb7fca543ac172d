"""The docs point at files that exist: a moved module must not leave the README or a link behind."""

import json
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


def test_benchmark_numbers_in_readme_are_the_recorded_ones():
    """Each benchmark's README row quotes the ratio in its benchmarks/results/*.json (what `make bench` wrote)."""
    readme = (ROOT / "README.md").read_text()
    rec = {p.stem: json.loads(p.read_text()) for p in (ROOT / "benchmarks" / "results").glob("*.json")}
    quoted = {
        "augment": [f"**{rec['augment']['threads_1']['ratio']}×**", f"2 threads {rec['augment']['threads_2']['ratio']}×"],
        "evaluation": [f"{rec['evaluation']['package_s']} s vs {rec['evaluation']['per_query_loop_s']:.1f} s",
                       f"**{rec['evaluation']['ratio']}×**"],
        "rerank_memory": [f"{rec['rerank_memory']['seconds']} s", f"+{rec['rerank_memory']['peak_rss_increase_mib']:,.0f} MiB"],
        "train_step": [f"{rec['train_step']['mcja_step_s']:.1f} s vs {rec['train_step']['plain_resnet50_ce_s']:.1f} s",
                       f"**{rec['train_step']['ratio_mcja_over_plain']}×**",
                       f"**{100 * rec['train_step']['augment_share_of_mcja_step']:.2f} %**"],
        "data": [f"{rec['data']['arrow_images_per_s']:,} vs files {rec['data']['pil_files_images_per_s']:,} img/s",
                 f"**{rec['data']['ratio']}×**"],
    }
    for name, texts in quoted.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}.py`"))
        for text in texts:
            assert text in row, (name, text, row)
