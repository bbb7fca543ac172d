"""A small Gradio app: upload an infrared (or any) query image, browse the ranked visible gallery.

    pip install 'mcja-hub[app]'
    python recipes/app.py --model org/mcja-sysu --gallery /data/gallery/   # or a .safetensors from `mcja embed`

Serves on 127.0.0.1 by default; the gallery is embedded once at start.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

import gradio as gr
import torch

from mcja_hub import MCJAModel
from mcja_hub.augment import eval_transform
from mcja_hub.evaluation.evaluate import embed_images
from mcja_hub.layouts import image_files


def load_gallery(model: MCJAModel, gallery: str) -> tuple[list[Path], torch.Tensor]:
    source = Path(gallery)
    if source.is_file():  # `mcja embed` output
        from safetensors import safe_open

        with safe_open(str(source), "pt") as f:
            meta = f.metadata()
            return [Path(meta["root"]) / p for p in json.loads(meta["paths"])], f.get_tensor("embeddings")
    try:
        paths = image_files(source)
    except FileNotFoundError as e:
        raise SystemExit(f"--gallery: {e} (give a folder of images or a .safetensors file from `mcja embed`)") from None
    return paths, embed_images(model, paths, num_workers=0)


def build_app(model: MCJAModel, paths: list[Path], gallery_emb: torch.Tensor, topk: int = 10) -> gr.Blocks:
    c = model.config

    def search(image):
        if image is None:
            raise gr.Error("upload a query image first")
        query = model.embed(eval_transform(image, tuple(c.input_size), c.mean, c.std)[None])
        dist = 1 - (query @ gallery_emb.T)[0]
        top = torch.topk(dist, min(topk, len(paths)), largest=False)
        return [(str(paths[i]), f"#{r + 1}  d={d:.3f}  {paths[i].parent.name}/{paths[i].name}")
                for r, (i, d) in enumerate(zip(top.indices.tolist(), top.values.tolist()))]

    with gr.Blocks(title="MCJA visible-infrared person search") as app:
        gr.Markdown(f"### MCJA person search\nGallery: {len(paths)} images. Upload a query (infrared or visible).")
        with gr.Row():
            query = gr.Image(type="pil", label="query", height=320)
            ranked = gr.Gallery(label=f"top {topk} (cosine distance)", columns=5, height=420)
        gr.Button("Search").click(search, inputs=query, outputs=ranked, api_name="search")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--gallery", required=True, help="folder of images or `mcja embed` .safetensors")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    model = MCJAModel.from_pretrained(args.model)
    paths, emb = load_gallery(model, args.gallery)
    build_app(model, paths, emb, args.topk).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
