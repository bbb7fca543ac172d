"""Ablation on the synthetic SYSU-MM01-layout dataset: baseline, +MAA, +CMR, full MCJA, N seeds each.

    python benchmarks/ablation.py [--seeds 5] [optim.epochs=12 "optim.milestones=[9]" ...]

Each run is `recipes/train.py --config recipes/configs/synthetic.yaml --config recipes/configs/ablation/<v>.yaml`
with seed s = 1..N (and any overrides given, e.g. a shorter schedule). Reports mean and std over the
seeds of R1 and mAP (all-search single-shot and multi-shot, 10 official-style trials), whatever they
show. Prints one JSON object. One run of the full 24-epoch schedule takes ~13 minutes on the 2-core VM of
2026-12 (4 variants x 5 seeds: ~4.5 hours); on a GPU it runs there as is.
"""

import argparse

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["baseline", "maa", "maa_cmr", "full"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N per variant (default 5)")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. optim.epochs=12 'optim.milestones=[9]'")
    args = parser.parse_args()
    extra, seeds = args.overrides, list(range(1, args.seeds + 1))
    from mcja_hub.data import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        data = generate_synthetic(Path(tmp) / "sysu", "sysu_mm01", ids=100, seed=0)
        results = {}
        for variant in VARIANTS:
            runs = []
            for seed in seeds:
                out = Path(tmp) / f"{variant}-{seed}"
                cmd = [sys.executable, str(ROOT / "recipes" / "train.py"), "--config",
                       str(ROOT / "recipes" / "configs" / "synthetic.yaml"), "--config",
                       str(ROOT / "recipes" / "configs" / "ablation" / f"{variant}.yaml"), "--data-dir", str(data),
                       f"output_dir={out}", f"seed={seed}", "eval.modes=[all]", "report_to=none", *extra]
                subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
                report = json.loads((out / "results.json").read_text())["results"]
                runs.append({s: (r["R1"], r["mAP"]) for s, r in report.items()})
                print(f"{variant} seed {seed}: " + ", ".join(f"{s} R1 {v[0]:.1f} mAP {v[1]:.1f}"
                                                            for s, v in runs[-1].items()), file=sys.stderr)
            results[variant] = {
                setting: {"R1_mean": round(float(np.mean([r[setting][0] for r in runs])), 2),
                          "R1_std": round(float(np.std([r[setting][0] for r in runs])), 2),
                          "mAP_mean": round(float(np.mean([r[setting][1] for r in runs])), 2),
                          "mAP_std": round(float(np.std([r[setting][1] for r in runs])), 2)}
                for setting in runs[0]}
    print(json.dumps({"benchmark": "ablation", "data": "synthetic SYSU-MM01 layout, 100 ids (80 train / 20 test)",
                      "seeds": seeds, "overrides": extra, "results": results}))


if __name__ == "__main__":
    main()
