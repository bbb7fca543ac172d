"""`make demo`: the whole product on a CPU, offline, in a few minutes — nothing simulated.

1. writes a synthetic dataset in the official SYSU-MM01 layout (`mcja synth`),
2. trains MCJA on it with `accelerate launch recipes/train.py --config recipes/configs/synthetic.yaml`,
3. evaluates it with the official SYSU-MM01 protocol (done by the recipe: 4 settings x 10 trials),
4. writes the model folder (config.json, model.safetensors, card), a CMC plot and a ranked-list picture,
5. loads the folder back as a Hub id from an offline cache, and prints a summary next to chance level.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "demo"
DATA = OUT / "data" / "SYSU-MM01-synthetic"
RUN = OUT / "mcja-synthetic"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> None:
    from mcja_hub import MCJAModel
    from mcja_hub.data import generate_synthetic
    from mcja_hub.evaluation import evaluate_rankings, sysu_trials
    from mcja_hub.evaluation.evaluate import embed_records
    from mcja_hub.hub import cache_model_folder
    from mcja_hub.search import rank
    from mcja_hub.viz import plot_cmc, ranked_grid

    t0 = time.time()
    step("1/5 synthetic SYSU-MM01-layout data")
    if not (DATA / "exp" / "rand_perm_cam.mat").is_file():
        shutil.rmtree(DATA, ignore_errors=True)
        generate_synthetic(DATA, "sysu_mm01", ids=100, seed=0)
    n_images = sum(1 for _ in DATA.glob("cam*/*/*.jpg"))
    print(f"{DATA} ({n_images} images, 100 identities: 80 train / 20 test)")

    step("2/5 training + 3/5 evaluation: accelerate launch recipes/train.py --config recipes/configs/synthetic.yaml")
    shutil.rmtree(RUN, ignore_errors=True)
    t_train = time.time()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu", str(ROOT / "recipes" / "train.py"),
           "--config", str(ROOT / "recipes" / "configs" / "synthetic.yaml"), "--data-dir", str(DATA),
           f"output_dir={RUN}"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    t_train = time.time() - t_train
    report = json.loads((RUN / "results.json").read_text())
    folder = RUN / "model"

    step("4/5 pictures")
    plot_cmc(report, OUT / "cmc.png")
    model = MCJAModel.from_pretrained(folder)
    protocol = sysu_trials(DATA, mode="all", shots=1, trials=1)
    trial = protocol.trials[0]
    pids, cams, _ = protocol.arrays()
    emb = embed_records(model, DATA, protocol.records, num_workers=0, progress=False)
    picks = [int(np.flatnonzero(pids[trial.query] == pid)[0]) for pid in sorted(set(pids[trial.query]))[:6]]
    indices, distances = rank(emb[trial.query[picks]], emb[trial.gallery], topk=8)
    ranked = indices.tolist()
    ranked_grid(
        [DATA / protocol.records[trial.query[q]].path for q in picks],
        [[DATA / protocol.records[trial.gallery[j]].path for j in r] for r in ranked], OUT / "ranked.png",
        distances=distances.tolist(),
        correct=[[pids[trial.gallery[j]] == pids[trial.query[q]] for j in r] for q, r in zip(picks, ranked)],
        query_labels=[f"IR query, id {pids[trial.query[q]]}" for q in picks])
    print(f"{OUT / 'cmc.png'}\n{OUT / 'ranked.png'}")

    step("5/5 the folder as a Hub repo, loaded offline by id")
    cache_model_folder(folder, "demo/mcja-synthetic", cache_dir=OUT / "hf-cache")
    from_hub = MCJAModel.from_pretrained("demo/mcja-synthetic", cache_dir=OUT / "hf-cache", local_files_only=True)
    x = torch.randn(2, 3, *model.config.input_size)
    same = torch.equal(from_hub.embed(x), model.embed(x))
    print(f"MCJAModel.from_pretrained('demo/mcja-synthetic'): embeddings {'identical' if same else 'DIFFERENT'}")

    # chance level: the same trials ranked at random
    rng = np.random.default_rng(0)
    chance = {}
    for mode, shots in (("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10)):
        p = sysu_trials(DATA, mode=mode, shots=shots, trials=10)
        pp, cc, _ = p.arrays()
        runs = [evaluate_rankings(rng.random((len(t.query), len(t.gallery))), pp[t.query], pp[t.gallery],
                                  cc[t.query], cc[t.gallery], "sysu_mm01") for t in p.trials]
        chance[p.trials[0].setting] = (100 * np.mean([r["cmc"][0] for r in runs]), 100 * np.mean([r["mAP"] for r in runs]))

    print("\n" + "=" * 78)
    print("mcja-hub demo summary (synthetic SYSU-MM01-layout data, official protocol, 10 trials)")
    print(f"{'setting':<28}{'R1':>8}{'mAP':>8}{'chance R1':>12}{'chance mAP':>12}")
    for setting, r in report["results"].items():
        c = chance[setting]
        print(f"{setting:<28}{r['R1']:>8.2f}{r['mAP']:>8.2f}{c[0]:>12.2f}{c[1]:>12.2f}")
    print(f"model folder : {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    print(f"pictures     : {OUT / 'cmc.png'}, {OUT / 'ranked.png'}")
    print(f"time         : {time.time() - t0:.0f} s in all, training + evaluation {t_train:.0f} s")
    print("=" * 78)
    if not same:
        raise SystemExit("the Hub round trip changed the embeddings")


if __name__ == "__main__":
    main()
