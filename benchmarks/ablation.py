"""Ablation on the synthetic SYSU-MM01-layout dataset: baseline, +MAA, +CMR, full MCJA, 3 seeds each.

Each run is `recipes/train.py --config recipes/configs/synthetic.yaml --config recipes/configs/ablation/<v>.yaml`
with seed s (and `epochs=N` for a shorter schedule if given as argument). Reports mean and std over the
seeds of R1 and mAP (all-search single-shot and multi-shot, 10 official-style trials), whatever they
show. Prints one JSON object. Takes about 4 x 3 x (3-4) minutes on 2 CPU cores at the default schedule.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["baseline", "maa", "maa_cmr", "full"]
SEEDS = [1, 2, 3]


def main():
    extra = sys.argv[1:]  # e.g. epochs=12 milestones=[9]
    from mcja_hub.data import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        data = generate_synthetic(Path(tmp) / "sysu", "sysu_mm01", ids=100, seed=0)
        results = {}
        for variant in VARIANTS:
            runs = []
            for seed in SEEDS:
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
                      "seeds": SEEDS, "overrides": extra, "results": results}))


if __name__ == "__main__":
    main()
