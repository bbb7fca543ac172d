"""Model cards with their results, pushing model folders, and seeding the Hub cache for offline use."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_model_folder(folder: str | os.PathLike, repo_id: str, cache_dir: str | os.PathLike | None = None,
                       commit: str = "0" * 40, ref: str = "main") -> Path:
    """Copy a model folder into a Hugging Face cache in the layout `hf download` leaves.

    For air-gapped machines: afterwards ``MCJAModel.from_pretrained(repo_id)`` works with
    ``HF_HUB_OFFLINE=1``. Blobs are content-addressed, the snapshot holds relative symlinks, and
    ``refs/<ref>`` names the commit. Returns the snapshot folder.
    """
    from huggingface_hub import constants

    if len(commit) != 40 or any(ch not in "0123456789abcdef" for ch in commit):
        raise ValueError(f"commit must be 40 lowercase hex digits, got {commit!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    repo = Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / f.name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs" / ref).write_text(commit)
    return snapshot


CARD_METRICS = (("R1", "rank-1", "Rank-1"), ("R10", "rank-10", "Rank-10"), ("R20", "rank-20", "Rank-20"),
                ("mAP", "mAP", "mAP"), ("mINP", "mINP", "mINP"))


def eval_results(report: dict, data_label: str | None = None) -> list:
    """huggingface_hub EvalResults (the card's model-index) of an ``evaluate`` report, one per
    setting and metric. ``data_label`` names what was evaluated when it is not the real benchmark
    (e.g. "synthetic SYSU-MM01 layout") so a card never passes off synthetic numbers as benchmark ones."""
    from huggingface_hub import EvalResult

    from .data.catalog import dataset

    entry = dataset(report["dataset"])
    dtype, dname = entry.hub_id, entry.display_name
    if data_label:
        dtype, dname = f"{dtype}-synthetic" if "synthetic" in data_label else dtype, data_label
    split = report.get("split", report.get("trial"))  # "trial": reports of earlier versions
    out = []
    for setting, r in report["results"].items():
        config = setting + (f" split {split}" if split else "")
        for key, mtype, mname in CARD_METRICS:
            out.append(EvalResult(
                task_type="image-feature-extraction", task_name="Visible-infrared person re-identification",
                dataset_type=dtype, dataset_name=dname, dataset_config=config, dataset_split="test",
                metric_type=mtype, metric_name=f"{mname} ({config}, re-ranking {report['rerank']})",
                metric_value=round(r[key], 2)))
    return out


def embedding_dim(backbone: str) -> int:
    """The trunk's output width (= the embedding size), without loading weights."""
    import timm

    return timm.create_model(backbone, pretrained=False, num_classes=0).num_features


def write_model_card(folder: str | os.PathLike, report: dict | None = None, training: dict | None = None,
                     repo_id: str | None = None, data_label: str | None = None) -> Path:
    """(Re)write ``folder/README.md``: the model's card (``mcja_hub.models.card``) with a training record
    and an ``evaluate`` report's results (as the card's model-index too). ``training=None`` keeps the record
    of the card already there (and with it its warnings); the report replaces any earlier results.
    ``data_label`` names the data when it is not the benchmark; a report on the generator's data is
    labelled synthetic whatever is passed."""
    from huggingface_hub import ModelCard

    from .data.catalog import DATASETS
    from .evaluation.evaluate import format_table
    from .models import MCJAConfig
    from .models.card import model_card

    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    config = MCJAConfig.from_dict(raw, source=str(folder / "config.json"))
    dim = raw.get("num_features") or embedding_dim(config.backbone)  # folders of earlier versions lack it
    path = folder / "README.md"
    if training is None and path.is_file():
        training = ModelCard.load(path).data.to_dict().get("mcja_training") or {}
    report, training = report or {}, training or {}
    entry = DATASETS.get(report.get("dataset") or training.get("dataset"))  # None: not known
    dataset, dtype, dname = (entry.name, entry.hub_id, entry.display_name) if entry else (None, None, None)
    marker = (report.get("data") or {}).get("synthetic")  # the generator's marker, found by evaluate()
    if marker and not data_label:
        data_label = (f"synthetic data in the {dname} layout (mcja synth, seed {marker.get('seed')}, "
                      f"{marker.get('ids')} identities), not the {dname} benchmark")
    synthetic = bool(data_label) and "synthetic" in data_label
    if data_label:
        description = data_label
    elif dataset:
        split = report.get("split", report.get("trial"))
        description = f"{dname} ({'split ' + str(split) if split else 'official splits'})"
    else:
        description = "the data named in the Training section"
    name = config.backbone.split(".")[0]
    card = model_card(
        config, dim, repo_id=repo_id, training=training, dataset=dataset or "<dataset>",
        eval_table="```\n" + format_table(report) + "\n```" if report.get("results") else None,
        eval_results=eval_results(report, data_label) if report.get("results") else None,
        datasets=[dtype] if dataset and not data_label else None,
        model_name=f"mcja-{name}-" + (f"synthetic-{dtype}" if synthetic else dtype) if dataset else None,
        data_description=description)
    card.save(path)
    return path


def released_dataset(checkpoint: str | os.PathLike, num_classes: int) -> str | None:
    """The dataset a released checkpoint was trained on, from its file name (``RegDB_model_best-300.pth``)
    or else its number of classes (395 / 206 / 713); None when neither tells."""
    from .data.catalog import DATASETS

    stem = Path(checkpoint).name.lower().replace("-", "").replace("_", "")
    by_name = [d.name for d in DATASETS.values() if stem.startswith((d.name.replace("_", ""), d.display_name.lower()
                                                                        .replace("-", "")))]
    by_classes = [d.name for d in DATASETS.values() if d.num_train_ids == num_classes]
    return (by_name or by_classes or [None])[0]


def push_model(folder: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = False,
               commit_message: str | None = None, revision: str | None = None) -> str:
    """Upload a model folder as a Hub model repo (the same as `hf upload REPO FOLDER`), after checking it
    is complete and loads: config.json + model.safetensors (strictly) + README.md. Returns the commit URL."""
    from huggingface_hub import HfApi

    from .models import MCJAModel

    folder = Path(folder)
    missing = [n for n in ("config.json", "model.safetensors", "README.md") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a complete model folder, missing {missing}")
    MCJAModel.from_pretrained(folder)  # refuses a mismatched config / weights before anything is uploaded
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", revision=revision,
                             commit_message=commit_message or f"Upload MCJA model from {folder.name}")
    return str(info)
