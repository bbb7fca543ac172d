"""Hub helpers: putting model folders where `from_pretrained("org/name")` finds them offline."""

from __future__ import annotations

import hashlib
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


DATASET_INFO = {  # dataset_type for the model-index, display name
    "sysu_mm01": ("sysu-mm01", "SYSU-MM01"),
    "regdb": ("regdb", "RegDB"),
    "llcm": ("llcm", "LLCM"),
}
CARD_METRICS = (("R1", "rank-1", "Rank-1"), ("R10", "rank-10", "Rank-10"), ("R20", "rank-20", "Rank-20"),
                ("mAP", "mAP", "mAP"), ("mINP", "mINP", "mINP"))


def eval_results(report: dict, data_label: str | None = None) -> list:
    """huggingface_hub EvalResults (the card's model-index) of an ``evaluate`` report, one per
    setting and metric. ``data_label`` names what was evaluated when it is not the real benchmark
    (e.g. "synthetic SYSU-MM01 layout") so a card never passes off synthetic numbers as benchmark ones."""
    from huggingface_hub import EvalResult

    dtype, dname = DATASET_INFO.get(report["dataset"], (report["dataset"], report["dataset"]))
    if data_label:
        dtype, dname = f"{dtype}-synthetic" if "synthetic" in data_label else dtype, data_label
    out = []
    for setting, r in report["results"].items():
        config = setting + (f" split {report['trial']}" if report.get("trial") else "")
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
    """(Re)write ``folder/README.md`` from the model's config, an ``evaluate`` report and a training
    summary, with the results as the card's model-index. ``save_pretrained`` never overwrites an
    existing README, so call this whenever the results change."""
    import json

    from huggingface_hub import ModelCard, ModelCardData

    from .evaluation.evaluate import format_table

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    report = report or {}
    training = training or {}
    dataset = report.get("dataset") or training.get("dataset") or "sysu_mm01"
    dtype, dname = DATASET_INFO.get(dataset, (dataset, dataset))
    data_description = data_label or f"{dname} ({'split ' + str(report['trial']) if report.get('trial') else 'official splits'})"
    mda = config["mda_layers"]
    model_summary = (
        f"- trunk: timm `{config['backbone']}`, last stride {config['last_stride']}"
        + (f", {sum(mda)} MDA modules (per stage {mda}, M={config['mda_m']})" if any(mda) else ", no MDA")
        + f"\n- GeM pooling (p={config['gem_p']}), BNNeck; embedding = post-BNNeck feature, L2-normalised"
        + f"\n- input {config['input_size'][0]}x{config['input_size'][1]}, mean {config['mean']}, std {config['std']}"
        + f"\n- training classifier: {config['num_classes']} identities (not needed for retrieval)")
    training_summary = "\n".join(f"- {k}: {v}" for k, v in training.items()) or "Not recorded."
    eval_table = "No evaluation results recorded."
    if report.get("results"):
        eval_table = "```\n" + format_table(report) + "\n```"
    name = config["backbone"].split(".")[0]
    card_data = ModelCardData(
        library_name="mcja-hub", license="mit", pipeline_tag="image-feature-extraction",
        tags=["person-reid", "visible-infrared", "cross-modality", "image-retrieval", "mcja", "pytorch"],
        datasets=[dtype] if not data_label else None, model_name=f"mcja-{name}-{dtype}",
        eval_results=eval_results(report, data_label) if report.get("results") else None)
    template = (Path(__file__).parent / "model_card_template.md").read_text()
    card = ModelCard.from_template(
        card_data, template_str=template, title=f"MCJA ({name}) for visible-infrared person re-identification",
        description=("A visible-infrared person re-identification model trained with mcja-hub's recipe of MCJA "
                     "(multi-level cross-modality joint alignment, Liang et al., TCSVT 2024, "
                     "[arXiv 2307.08316](https://arxiv.org/abs/2307.08316)); the Training section lists which of its "
                     "parts (modality alignment augmentation, cross-modality retrieval loss, MDA) this run used."),
        repo_id=repo_id or "<org>/<name>", dim=embedding_dim(config["backbone"]),
        dataset=dataset, model_summary=model_summary, training_summary=training_summary, eval_table=eval_table,
        data_description=data_description,
        selection_note=(" The checkpoint was chosen by its test-set Rank-1 (the released code's practice), so "
                        "these numbers are optimistic." if training.get("model_selection", "").startswith("best") else ""))
    path = folder / "README.md"
    card.save(path)
    return path
