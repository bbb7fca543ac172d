"""Checkpoints of the released MCJA code (workingcoder/MCJA ``*_model_best-<epoch>.pth``) as MCJAModels.

Key mapping (docs/method.md, "Released checkpoints"): ``backbone.*`` keeps its (torchvision = timm) names
except the unused ImageNet ``backbone.fc.*``, which is dropped; ``MDA_<s>.<k>.*`` -> ``mda.layer<s>.<k>.*``;
``bn_neck.*`` and ``classifier.weight`` keep theirs. num_classes, the MDA layout and M are read from the
tensors; ``last_stride`` is not in a state dict (the released configs use 2).
"""

from __future__ import annotations

import os
import re

import torch

from .mcja import MCJAConfig, MCJAModel


def released_state_dict(obj, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a released-code checkpoint: a flat state dict, possibly under a key and/or with
    DataParallel's ``module.`` prefix."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{source}: no state dict of tensors found (top-level keys: {found})")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def convert_released_checkpoint(checkpoint: str | os.PathLike, last_stride: int = 2,
                                backbone: str = "resnet50") -> MCJAModel:
    """The MCJAModel of a released-code checkpoint, loaded with ``torch.load(weights_only=True)`` (never
    unpickling code); every key must map, and the strict loader names any mismatch."""
    source = str(checkpoint)
    state = released_state_dict(torch.load(source, map_location="cpu", weights_only=True), source)
    mapped, unmapped = {}, []
    mda_counts, mda_m = [0, 0, 0, 0], 2
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
    model = MCJAModel(MCJAConfig(backbone=backbone, num_classes=mapped["classifier.weight"].shape[0],
                                 last_stride=last_stride, mda_layers=tuple(mda_counts), mda_m=mda_m))
    model.load_checked(mapped, source)
    return model.eval()
