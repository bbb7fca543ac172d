"""The model card: one template (``model_card_template.md``) filled by one function.

``save_pretrained`` writes it with what the model knows (its config); ``mcja_hub.hub.write_model_card``
adds the training record and the evaluation results. The training record is also kept in the card's
metadata (``mcja_training``), so rewriting the results of a card keeps its training section and warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("model_card_template.md")
PAPER = "[arXiv 2307.08316](https://arxiv.org/abs/2307.08316)"


def model_summary(config) -> str:
    mda = config.mda_layers
    return (f"- trunk: timm `{config.backbone}`, last stride {config.last_stride}"
            + (f", {sum(mda)} MDA modules (per stage {list(mda)}, M={config.mda_m})" if any(mda) else ", no MDA")
            + f"\n- GeM pooling (p={config.gem_p}), BNNeck; embedding = post-BNNeck feature, L2-normalised"
            + f"\n- input {config.input_size[0]}x{config.input_size[1]}, mean {list(config.mean)}, std {list(config.std)}"
            + (f"\n- training classifier: {config.num_classes} identities (not needed for retrieval)"
               if config.num_classes else "\n- no training classifier"))


def model_card(config, dim: int, *, repo_id: str | None = None, training: dict[str, Any] | None = None,
               dataset: str = "<sysu_mm01|regdb|llcm>", eval_table: str | None = None, eval_results: list | None = None,
               datasets: list[str] | None = None, model_name: str | None = None,
               data_description: str = "the data named in the Training section") -> Any:
    """A ``huggingface_hub.ModelCard`` for a model of ``config`` (an MCJAConfig) with ``dim``-d embeddings."""
    from huggingface_hub import ModelCard, ModelCardData

    training = training or {}
    name = config.backbone.split(".")[0]
    card_data = ModelCardData(
        library_name="mcja-hub", license="mit", pipeline_tag="image-feature-extraction",
        tags=["person-reid", "visible-infrared", "cross-modality", "image-retrieval", "mcja", "pytorch"],
        datasets=datasets or None, model_name=model_name or f"mcja-{name}", eval_results=eval_results or None,
        mcja_training={k: str(v) for k, v in training.items()} or None)
    optimistic = str(training.get("model_selection", "")).startswith("best")
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE.read_text(), title=f"MCJA ({name}) for visible-infrared person re-identification",
        description=("A visible-infrared person re-identification model of mcja-hub's MCJA (multi-level cross-modality "
                     f"joint alignment, Liang et al., TCSVT 2024, {PAPER}); the Training section lists which of its "
                     "parts (modality alignment augmentation, cross-modality retrieval loss, MDA) were used."),
        repo_id=repo_id or "<org>/<name>", dim=dim, dataset=dataset, model_summary=model_summary(config),
        training_summary="\n".join(f"- {k}: {v}" for k, v in training.items()) or "Not recorded.",
        eval_table=eval_table or "No evaluation results recorded in this card: `mcja eval ... --json r.json`, then "
                                 "`mcja card --model FOLDER --results r.json` adds them.",
        data_description=data_description,
        selection_note=(" The checkpoint was chosen by its test-set Rank-1 (the released code's practice), so "
                        "these numbers are optimistic." if optimistic else ""))
