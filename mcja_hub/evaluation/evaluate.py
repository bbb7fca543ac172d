"""``evaluate(model, dataset, data_dir)``: embed the test images once, run every trial and setting.

Results are percentages, averaged over trials with their standard deviation, in the layout papers
report (R1/R5/R10/R20, mAP, mINP per setting).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..augment import eval_transform, to_rgb
from ..data.catalog import DATASETS, build_protocols, dataset as dataset_entry
from ..data.layouts import Record, fingerprint, renamed, synthetic_marker
from ..data.trials import Protocol
from .metrics import evaluate_subsets
from .rerank import k_reciprocal_rerank

RERANK = ("none", "kreciprocal", "mser")
METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


class _Images(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], config, channel: int | None) -> None:
        self.paths, self.config, self.channel = paths, config, channel

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as im:
                image = to_rgb(im)
        except Exception as e:
            raise OSError(f"cannot read image {self.paths[i]}: {e}") from e
        c = self.config
        return eval_transform(image, tuple(c.input_size), c.mean, c.std, self.channel)


@torch.no_grad()
def embed_images(model, paths: list[str | Path], channel: int | None = None, flip: bool = False, batch_size: int = 128,
                 num_workers: int = 2, progress: bool = True, desc: str = "embedding") -> torch.Tensor:
    """L2-normalised embeddings of image files (in order), on the CPU, with the model's test transform.
    ``channel`` 0/1/2 embeds the single-channel view (MSER); ``flip`` averages with the mirrored image."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(_Images([Path(p) for p in paths], model.config, channel),
                                         batch_size=batch_size, num_workers=num_workers, shuffle=False)
    out = []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        e = model.embed(batch)
        if flip:
            e = torch.nn.functional.normalize(e + model.embed(batch.flip(-1)), dim=1)
        out.append(e.cpu())
    return torch.cat(out) if out else torch.empty(0, model.num_features)


def embed_records(model, root: str | Path, records: list[Record], channel: int | None = None, flip: bool = False,
                  batch_size: int = 128, num_workers: int = 2, progress: bool = True, desc: str = "embedding") -> torch.Tensor:
    """``embed_images`` of dataset records (paths relative to ``root``)."""
    return embed_images(model, [Path(root) / r.path for r in records], channel, flip, batch_size, num_workers,
                        progress, desc)


def evaluate(model, dataset: str, data_dir: str | Path, *, modes=("all", "indoor"), shots=(1, 10), trials: int = 10,
             split: int | None = None, trial: int | None = None, rerank: str = "none", flip: bool = False,
             dedup: bool | None = None,
             batch_size: int = 128, num_workers: int = 2, max_rank: int = 20, progress: bool = True,
             protocols: list[Protocol] | None = None) -> dict:
    """Evaluate ``model`` (anything with ``embed`` and ``config``, e.g. MCJAModel) on a benchmark.

    SYSU-MM01: every (mode, shots) setting over ``trials`` official trials. RegDB: ``split`` (required:
    the split the model was trained on; ``trial`` is its old name), both directions. LLCM: ``trials``
    seeded galleries, both directions. ``rerank``: "none", "kreciprocal" or "mser" (the released per-dataset constants).
    ``protocols``: the ``build_protocols`` of these settings, when already built (a training run checks
    them before its first step).
    """
    if rerank not in RERANK:
        raise ValueError(f"rerank must be one of {RERANK}, got {rerank!r}")
    dataset = dataset_entry(dataset).name
    split = renamed(split, trial, "split", "trial")
    protocols = protocols or build_protocols(dataset, data_dir, modes, shots, trials, split)
    records = protocols[0].records  # identical test list for all of a dataset's protocols
    pids, cams, mods = protocols[0].arrays()
    was_training = model.training
    model.eval()
    try:
        views = [embed_records(model, data_dir, records, None, flip, batch_size, num_workers, progress)]
        if rerank == "mser":  # R, G, B views of the visible images (infrared images are unaffected)
            visible = np.flatnonzero(mods == 0)
            for c in range(3):
                e = views[0].clone()
                e[visible] = embed_records(model, data_dir, [records[i] for i in visible], c, flip, batch_size,
                                           num_workers, progress, desc=f"embedding {'RGB'[c]} view")
                views.append(e)
    finally:
        model.train(was_training)

    per_setting: dict[str, list[dict]] = {}
    for protocol in protocols:
        for setting in protocol.settings():
            trials_ = [t for t in protocol.trials if t.setting == setting]
            query, rule = trials_[0].query, protocol.dataset
            if rerank == "none" and all(np.array_equal(t.query, query) for t in trials_):
                # one ranking of the gallery pool per query, restricted to each trial's gallery
                pool = np.unique(np.concatenate([t.gallery for t in trials_]))
                position = {g: k for k, g in enumerate(pool.tolist())}
                subsets = [np.sort([position[g] for g in t.gallery.tolist()]) for t in trials_]
                runs = evaluate_subsets(_distances(views, query, pool, mods, dataset, rerank), pids[query], pids[pool],
                                        cams[query], cams[pool], subsets, rule, max_rank, dedup)
            else:  # re-ranking depends on the whole gallery of the trial
                runs = [evaluate_subsets(_distances(views, t.query, t.gallery, mods, dataset, rerank), pids[t.query],
                                         pids[t.gallery], cams[t.query], cams[t.gallery], [None], rule, max_rank,
                                         dedup)[0] for t in trials_]
            per_setting[setting] = runs
    return {
        "dataset": dataset, "rerank": rerank, "flip": flip,
        "dedup_cmc": DATASETS[dataset].dedup_cmc if dedup is None else dedup,
        "split": split if DATASETS[dataset].splits > 1 else None,
        # where the numbers come from: the data (synthetic or not, whatever a config says) and the protocol
        "data": {"dir": str(Path(data_dir).resolve()), "fingerprint": fingerprint(data_dir),
                 "synthetic": synthetic_marker(data_dir)},
        "protocol": {"discard_rule": protocols[0].dataset,
                     "trials": {setting: len(runs) for setting, runs in per_setting.items()}},
        "results": {setting: summarize(runs) for setting, runs in per_setting.items()},
    }


def _distances(views: list[torch.Tensor], q: np.ndarray, g: np.ndarray, mods: np.ndarray, dataset: str,
               rerank: str) -> torch.Tensor:
    base = views[0]
    if rerank == "none":
        return -(base[q] @ base[g].T)  # cosine distance ranking on unit vectors
    k1, k2, lam, mask = DATASETS[dataset].mser
    if rerank == "kreciprocal":
        return k_reciprocal_rerank(base[q], base[g], k1, k2, lam, mask)
    # MSER: the visible side contributes its 4 spectral versions
    if mods[q[0]] == 0:
        return k_reciprocal_rerank([v[q] for v in views], base[g], k1, k2, lam, mask)
    return k_reciprocal_rerank(base[q], [v[g] for v in views], k1, k2, lam, mask)


def summarize(runs: list[dict]) -> dict:
    """Mean and std (over trials) of R1/R5/R10/R20, mAP, mINP in percent, plus the mean CMC curve."""
    table = {"R1": [r["cmc"][0] for r in runs], "R5": [r["cmc"][4] for r in runs],
             "R10": [r["cmc"][9] for r in runs], "R20": [r["cmc"][19] for r in runs],
             "mAP": [r["mAP"] for r in runs], "mINP": [r["mINP"] for r in runs]}
    return {
        **{k: 100 * float(np.mean(v)) for k, v in table.items()},
        "std": {k: 100 * float(np.std(v)) for k, v in table.items()},
        "trials": len(runs),
        "cmc": (100 * np.mean([r["cmc"] for r in runs], axis=0)).tolist(),
    }


def format_table(report: dict) -> str:
    """The results as papers print them: one row per setting, mean (± std over trials)."""
    name = DATASETS[report["dataset"]].display_name if report["dataset"] in DATASETS else report["dataset"]
    split = report.get("split", report.get("trial"))  # "trial": reports of earlier versions
    title = f"{name}" + (f" split {split}" if split else "")
    title += f" | re-ranking: {report['rerank']} | CMC {'identity-deduplicated' if report['dedup_cmc'] else 'plain'}"
    width = max(len(s) for s in report["results"]) + 2
    lines = [title, "setting".ljust(width) + "".join(m.rjust(15) for m in METRICS)]
    for setting, r in report["results"].items():
        cells = [f"{r[m]:.2f}" + (f" ±{r['std'][m]:.2f}" if r["trials"] > 1 else "") for m in METRICS]
        lines.append(setting.ljust(width) + "".join(c.rjust(15) for c in cells) + f"   ({r['trials']} trials)")
    return "\n".join(lines)
