"""Person search: rank a gallery for query images. One implementation for `mcja embed` / `mcja search`,
the Gradio app (recipes/app.py) and the demo's ranked-list picture.

A gallery is a folder of images (embedded on the fly) or a ``.safetensors`` file written by
``save_gallery`` (`mcja embed`): the embeddings plus the image paths and the embedding model's weights
hash, so a gallery is never ranked with another model's embeddings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .evaluation.evaluate import embed_images
from .data.layouts import image_files


@dataclass
class Gallery:
    paths: list[Path]
    embeddings: torch.Tensor  # (N, D), L2-normalised


def weights_id(model) -> str:
    """A short content hash of the model's tensors: what a saved gallery records about its model."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def embed_gallery(model, folder: str | Path, batch_size: int = 64, num_workers: int = 0,
                  progress: bool = True) -> Gallery:
    """Every image under ``folder`` (recursively, sorted), embedded by ``model``."""
    paths = image_files(folder)
    return Gallery(paths, embed_images(model, paths, batch_size=batch_size, num_workers=num_workers, progress=progress))


def save_gallery(gallery: Gallery, root: str | Path, out: str | Path, model, model_name: str) -> Path:
    """``out`` (.safetensors): tensor ``embeddings``; metadata ``paths`` (relative to ``root``), ``root``,
    ``model`` (its name) and ``weights`` (``weights_id(model)``)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    root = Path(root)
    save_file({"embeddings": gallery.embeddings.contiguous()}, str(out),
              metadata={"paths": json.dumps([str(p.relative_to(root)) for p in gallery.paths]),
                        "root": str(root.resolve()), "model": model_name, "weights": weights_id(model)})
    return out


def load_gallery(source: str | Path, model, model_name: str = "the model", num_workers: int = 0) -> Gallery:
    """A gallery from a folder of images (embedded now) or a saved ``.safetensors`` one, checked to come
    from ``model``: a file made by another model is refused naming both, whatever its embedding size."""
    source = Path(source)
    if not source.is_file():
        return embed_gallery(model, source, num_workers=num_workers)
    from safetensors import safe_open

    with safe_open(str(source), "pt") as f:
        embeddings, meta = f.get_tensor("embeddings"), f.metadata() or {}
    if "paths" not in meta or "root" not in meta:
        raise ValueError(f"{source}: not a gallery written by `mcja embed` (no paths / root in its metadata)")
    mine = weights_id(model)
    if meta.get("weights") not in (None, mine):  # embeddings of another model do not compare
        raise ValueError(f"{source} was embedded by another model ({meta.get('model')}, weights {meta['weights']}) "
                         f"than {model_name} (weights {mine}); embed the gallery again with this model")
    if embeddings.shape[1] != model.num_features:
        raise ValueError(f"{source}: its embeddings are {embeddings.shape[1]}-d, those of {model_name} "
                         f"{model.num_features}-d; embed the gallery again with this model")
    return Gallery([Path(meta["root"]) / p for p in json.loads(meta["paths"])], embeddings)


def rank(queries: torch.Tensor, gallery: torch.Tensor, topk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``topk`` nearest gallery embeddings of each query embedding: (indices, cosine distances), each
    (Q, k), nearest first. Cosine distance = 1 - cosine similarity: 0 same direction, lower is closer."""
    distances = 1 - queries @ gallery.T
    top = torch.topk(distances, min(topk, gallery.shape[0]), dim=1, largest=False)
    return top.indices, top.values


def distinct_names(paths: list) -> list[str]:
    """The shortest path tails that tell the images apart (cam3/0001/0001.jpg vs cam6/0001/0001.jpg)."""
    parts = [Path(p).parts for p in paths]
    for k in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(set(map(str, paths))):
            return names
    return [str(p) for p in paths]
