"""Ablation on the synthetic SYSU-MM01-layout dataset: baseline, +MAA, +CMR, full MCJA, N seeds each.

    python benchmarks/ablation.py [--seeds 5] [--jobs 2] [--runs DIR] [optim.epochs=12 "optim.milestones=[9]" ...]

Each run is `recipes/train.py --config recipes/configs/synthetic.yaml --config recipes/configs/ablation/<v>.yaml`
with seed s = 1..N (and any overrides given, e.g. a shorter schedule). Reports mean and std over the
seeds of R1 and mAP (all-search single-shot and multi-shot, 10 official-style trials), whatever they
show. Prints one JSON object.

Every finished run is kept as `<variant>-seed<s>.json` in the runs folder (by default one per set of
overrides under benchmarks/results/ablation-runs/), and a later call skips the runs already there: a table
of 4 variants x 5 seeds can be filled over several sittings, and the JSON says which runs it still lacks.
Runs go seed by seed, so a partial table has the same seeds for every variant; `--report` prints the
table of the runs kept so far without training. A folder's runs share their overrides, data, device and
code (a hash of mcja_hub/, recipes/train.py and the configs): a run that would differ is refused.
`--jobs J` trains J runs at once with cores/J threads each (on 2 CPU cores two 1-thread runs finish ~1.35x
sooner than one after the other; the thread count is recorded: it changes the floating-point order, so
runs are not bit-identical across thread counts). One run of the full 24-epoch schedule takes ~13 minutes
on the 2-core VM of 2026-12 (~9.5 with --jobs 2).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["baseline", "maa", "maa_cmr", "full"]
DATA = dict(dataset="sysu_mm01", ids=100, seed=0)  # the synthetic data every run trains and tests on
DEVICE = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"  # where the recipe trains


def code_fingerprint() -> str:
    """Hash of what a run executes (the package, the recipe, its configs): a table never averages runs of
    different code, so a change, a comment included, needs another runs folder."""
    h = hashlib.sha256()
    for path in sorted([*(ROOT / "mcja_hub").rglob("*.py"), ROOT / "recipes" / "train.py",
                        *(ROOT / "recipes" / "configs").rglob("*.yaml")]):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


CODE = code_fingerprint()  # read once, before any run starts


def train_one(variant: str, seed: int, data: Path, extra: list[str], threads: int) -> dict:
    """One recipe run in a temporary folder; returns its record (the run's R1 / mAP per setting)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "recipes" / "train.py"),
               "--config", str(ROOT / "recipes" / "configs" / "synthetic.yaml"),
               "--config", str(ROOT / "recipes" / "configs" / "ablation" / f"{variant}.yaml"),
               "--data-dir", str(data), f"output_dir={tmp}/run", f"seed={seed}", "eval.modes=[all]",
               "report_to=none", *extra]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{variant} seed {seed} failed (exit {proc.returncode}):\n{tail}")
        report = json.loads((Path(tmp) / "run" / "results.json").read_text())["results"]
    return {"variant": variant, "seed": seed, "overrides": extra, "data": DATA, "threads": threads, "device": DEVICE,
            "code": CODE,
            "results": {s: {"R1": r["R1"], "mAP": r["mAP"]} for s, r in report.items()}}


def load_runs(runs_dir: Path, extra: list[str]) -> dict:
    """The finished runs in runs_dir, keyed (variant, seed); refuses runs made with other overrides or data."""
    runs = {}
    for path in sorted(runs_dir.glob("*-seed*.json")):
        record = json.loads(path.read_text())
        if record["overrides"] != extra or record["data"] != DATA:
            raise SystemExit(f"{path}: made with overrides {record['overrides']} on data {record['data']}, not "
                             f"{extra} on {DATA}; give another --runs folder")
        runs[record["variant"], record["seed"]] = record
    return runs


def summarise(runs: list[dict]) -> dict:
    """Mean and (population) std over seeds of R1 and mAP per setting."""
    return {setting: {f"{m}_{stat}": round(float(fn([r["results"][setting][m] for r in runs])), 2)
                      for m in ("R1", "mAP") for stat, fn in (("mean", np.mean), ("std", np.std))}
            for setting in runs[0]["results"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N per variant (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="folder of finished runs (default: benchmarks/results/ablation-runs/<overrides>)")
    parser.add_argument("--report", action="store_true", help="only summarise the runs already kept (train none)")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. optim.epochs=12 'optim.milestones=[9]'")
    args = parser.parse_args()
    extra, seeds = args.overrides, list(range(1, args.seeds + 1))
    slug = re.sub(r"[^A-Za-z0-9.=_-]", "", "_".join(extra)) or "default"
    runs_dir = args.runs or ROOT / "benchmarks" / "results" / "ablation-runs" / slug
    runs_dir.mkdir(parents=True, exist_ok=True)
    done = load_runs(runs_dir, extra)
    todo = [] if args.report else [(v, s) for s in seeds for v in VARIANTS if (v, s) not in done]
    other = sorted({r["device"] for r in done.values()} - {DEVICE})
    if todo and other:  # a table compares variants trained on one kind of device
        raise SystemExit(f"runs in {runs_dir} trained on {other}, this machine trains on {DEVICE}: give another --runs")
    if todo and {r["code"] for r in done.values()} - {CODE}:
        raise SystemExit(f"runs in {runs_dir} were trained by other code (mcja_hub/, recipes/ changed since): "
                         "give another --runs")
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"{len(done)} run(s) already in {runs_dir}, {len(todo)} to train, {args.jobs} at a time "
          f"x {threads} thread(s)", file=sys.stderr)
    if todo:
        from mcja_hub.data import generate_synthetic

        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
            data = generate_synthetic(Path(tmp) / "sysu", DATA["dataset"], ids=DATA["ids"], seed=DATA["seed"])
            futures = [pool.submit(train_one, v, s, data, extra, threads) for v, s in todo]
            for future in as_completed(futures):  # each run is kept as soon as it ends
                if future.exception():
                    pool.shutdown(cancel_futures=True)
                    raise SystemExit(str(future.exception()))
                record = future.result()
                path = runs_dir / f"{record['variant']}-seed{record['seed']}.json"
                path.with_suffix(".tmp").write_text(json.dumps(record, indent=1))
                path.with_suffix(".tmp").replace(path)
                print(f"{record['variant']} seed {record['seed']}: " + ", ".join(
                    f"{s} R1 {r['R1']:.1f} mAP {r['mAP']:.1f}" for s, r in record["results"].items()), file=sys.stderr)
        done = load_runs(runs_dir, extra)
    results = {v: summarise(rs) for v in VARIANTS if (rs := [done[v, s] for s in seeds if (v, s) in done])}
    missing = [f"{v}-seed{s}" for s in seeds for v in VARIANTS if (v, s) not in done]
    print(json.dumps({"benchmark": "ablation", "data": "synthetic SYSU-MM01 layout, 100 ids (80 train / 20 test)",
                      "seeds": seeds, "overrides": extra, "threads": sorted({r["threads"] for r in done.values()}),
                      "devices": sorted({r["device"] for r in done.values()}),
                      "code": sorted({r["code"] for r in done.values()}),
                      "runs": str(runs_dir.relative_to(ROOT) if runs_dir.is_relative_to(ROOT) else runs_dir),
                      "missing": missing, "results": results}))


if __name__ == "__main__":
    main()
