"""A small Gradio app: upload an infrared (or any) query image, browse the ranked visible gallery.

    pip install 'mcja-hub[app]'
    python recipes/app.py --model org/mcja-sysu --gallery /data/gallery/   # or a .safetensors from `mcja embed`

Serves on 127.0.0.1 by default; the gallery is embedded once at start.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

import gradio as gr

from mcja_hub import MCJAModel
from mcja_hub.augment import eval_transform
from mcja_hub.search import Gallery, distinct_names, load_gallery, rank


def build_app(model: MCJAModel, gallery: Gallery, topk: int = 10) -> gr.Blocks:
    c = model.config
    names = distinct_names(gallery.paths)

    def search(image):
        if image is None:
            raise gr.Error("upload a query image first")
        query = model.embed(eval_transform(image, tuple(c.input_size), c.mean, c.std)[None])
        indices, distances = rank(query, gallery.embeddings, topk)
        return [(str(gallery.paths[i]), f"#{r + 1}  d={d:.3f}  {names[i]}")
                for r, (i, d) in enumerate(zip(indices[0].tolist(), distances[0].tolist()))]

    with gr.Blocks(title="MCJA visible-infrared person search") as app:
        gr.Markdown(f"### MCJA person search\nGallery: {len(gallery.paths)} images. Upload a query (infrared or "
                    "visible). Under each result: its rank, its cosine distance d to the query (lower is closer) "
                    "and its file.")
        with gr.Row():
            query = gr.Image(type="pil", label="query", height=320)
            # whole people: person crops are ~1:2, so thumbnails are letterboxed, never cropped
            ranked = gr.Gallery(label=f"top {topk}, nearest first", columns=5, height=460, object_fit="contain")
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
    try:
        gallery = load_gallery(args.gallery, model, f"--model {args.model}")
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"--gallery {e} (give a folder of images or a .safetensors file from `mcja embed`)") from None
    build_app(model, gallery, args.topk).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
