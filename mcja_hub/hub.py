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
    marker = (report.get("data") or {}).get("synthetic")  # the generator's marker, found by evaluate()
    if marker and not data_label:
        data_label = (f"synthetic data in the {dname} layout (mcja synth, seed {marker.get('seed')}, "
                      f"{marker.get('ids')} identities), not the {dname} benchmark")
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
        datasets=[dtype] if not data_label else None,
        model_name=f"mcja-{name}-" + (f"synthetic-{dtype}" if data_label and "synthetic" in data_label else dtype),
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


def _released_state_dict(obj, source: str) -> dict:
    """The tensors of a released-code checkpoint: a flat state dict, possibly under a key and/or with
    DataParallel's ``module.`` prefix."""
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{source}: no state dict of tensors found (top-level keys: {list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__})")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def convert_released_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, last_stride: int = 2,
                                backbone: str = "resnet50") -> Path:
    """Turn a checkpoint of the released MCJA code (workingcoder/MCJA ``*_model_best-<epoch>.pth``) into a
    safetensors model folder. Loaded with ``torch.load(weights_only=True)``; every key must map.

    Key mapping (SPEC §11): ``backbone.*`` keeps its (torchvision = timm) names except the unused
    ImageNet ``backbone.fc.*``, which is dropped; ``MDA_<s>.<k>.*`` -> ``mda.layer<s>.<k>.*``;
    ``bn_neck.*`` and ``classifier.weight`` keep theirs. num_classes, the MDA layout and M are read from the
    tensors; ``last_stride`` is not in a state dict (the released configs use 2).
    """
    import re

    import torch

    from .models import MCJAConfig, MCJAModel

    source = str(checkpoint)
    state = _released_state_dict(torch.load(source, map_location="cpu", weights_only=True), source)
    mapped, unmapped = {}, []
    mda_counts = [0, 0, 0, 0]
    mda_m = 2
    for key, value in state.items():
        m = re.fullmatch(r"MDA_([1-4])\.(\d+)\.(.+)", key)
        if key.startswith("backbone.fc."):
            continue  # the ImageNet classifier of the torchvision ResNet, never used
        if m:
            stage, index, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            mda_counts[stage - 1] = max(mda_counts[stage - 1], index + 1)
            if rest == "sc_conv.weight":
                mda_m = value.shape[0]
            mapped[f"mda.layer{stage}.{index}.{rest}"] = value
        elif key.startswith(("backbone.", "bn_neck.")) or key == "classifier.weight":
            mapped[key] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{source}: {len(unmapped)} key(s) not in the released MCJA layout: {unmapped[:20]}")
    if "classifier.weight" not in mapped:
        raise ValueError(f"{source}: no classifier.weight; is this a released MCJA checkpoint?")
    config = MCJAConfig(backbone=backbone, num_classes=mapped["classifier.weight"].shape[0], last_stride=last_stride,
                        mda_layers=tuple(mda_counts), mda_m=mda_m)
    model = MCJAModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(mapped) - set(expected))
    shapes = [f"{k}: {tuple(mapped[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
              if k in mapped and mapped[k].shape != expected[k].shape]
    if missing or extra or shapes:
        raise ValueError(f"{source}: does not match {backbone} with mda_layers={config.mda_layers}: missing {missing[:10]}, "
                         f"unexpected {extra[:10]}, shapes {shapes[:10]}")
    model.load_state_dict(mapped, strict=True)
    out = Path(out)
    model.save_pretrained(out)
    write_model_card(out, None, {"origin": f"converted from the released MCJA code's checkpoint {Path(source).name}"})
    return out


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


def export_onnx(model, out: str | os.PathLike, batch_size: int = 1, opset: int | None = None) -> Path:
    """Export the embedding path (image -> L2-normalised post-BNNeck embedding, eval mode) to ONNX with a
    dynamic batch axis. Uses torch's dynamo exporter: the legacy TorchScript exporter was measured to
    disagree with PyTorch by ~0.2 on these models. Needs the `[onnx]` extra (onnx, onnxscript)."""
    import inspect
    import warnings

    import torch
    import torch.nn.functional as F

    class Embedder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, images):
            return F.normalize(self.m.forward_head(self.m.forward_features(images), pre_logits=True), dim=1)

    was_training = model.training
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(batch_size, 3, *model.config.input_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one self-contained file (the weights inside, < 2 GB): a side .data file gets lost when copied alone
            single_file = {"external_data": False} if "external_data" in inspect.signature(torch.onnx.export).parameters else {}
            torch.onnx.export(Embedder(model), (example,), str(out), input_names=["images"], output_names=["embeddings"],
                              dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}}, opset_version=opset,
                              dynamo=True, **single_file)
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx extra: pip install 'mcja-hub[onnx]' ({e})") from e
    finally:
        model.train(was_training)
    return out
