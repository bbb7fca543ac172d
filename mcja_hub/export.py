"""ONNX export of the embedding path."""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


class _Embedder(torch.nn.Module):
    """image -> L2-normalised post-BNNeck embedding (what ``MCJAModel.embed`` returns)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, images):
        return F.normalize(self.model.forward_head(self.model.forward_features(images), pre_logits=True), dim=1)


def export_onnx(model, out: str | os.PathLike, batch_size: int = 1, opset: int | None = None) -> Path:
    """Export ``model``'s embedding path (eval mode) to one self-contained ONNX file with a dynamic batch
    axis. Uses torch's dynamo exporter: the legacy TorchScript exporter was found to disagree with PyTorch
    by ~0.2 on these models. Needs the `[onnx]` extra (onnx, onnxscript)."""
    was_training = model.training
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(batch_size, 3, *model.config.input_size)
    # the weights inside the file (< 2 GB): a side .data file gets lost when the .onnx is copied alone
    single_file = {"external_data": False} if "external_data" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Embedder(model), (example,), str(out), input_names=["images"],
                              output_names=["embeddings"], dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                              opset_version=opset, dynamo=True, **single_file)
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx extra: pip install 'mcja-hub[onnx]' ({e})") from e
    finally:
        model.train(was_training)
    return out
