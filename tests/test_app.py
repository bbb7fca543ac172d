"""The Gradio app answers a query on loopback, called through gradio_client."""

import importlib.util
import socket
import sys
from pathlib import Path

import torch

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.search import distinct_names, load_gallery

ROOT = Path(__file__).resolve().parents[1]


def _load_app():
    spec = importlib.util.spec_from_file_location("mcja_app", ROOT / "recipes" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_answers_on_loopback(synthetic):
    from gradio_client import Client, handle_file

    app_module = _load_app()
    torch.manual_seed(0)
    model = MCJAModel(MCJAConfig(backbone="resnet18", input_size=(64, 32))).eval()
    gallery = load_gallery(synthetic["sysu"] / "cam1", model)
    paths, emb = gallery.paths, gallery.embeddings
    app = app_module.build_app(model, gallery, topk=4)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        query = next(synthetic["sysu"].glob("cam3/*/*.jpg"))
        result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(handle_file(str(query)), api_name="/search")
        assert len(result) == 4
        captions = [item["caption"] for item in result]
        assert captions[0].startswith("#1  d=") and captions[3].startswith("#4")
        # the ranking equals the library's own
        from mcja_hub.evaluation.evaluate import embed_images
        q = embed_images(model, [query], num_workers=0, progress=False)
        best = torch.argsort(1 - (q @ emb.T)[0])[:4].tolist()
        names = distinct_names(paths)  # every caption names one image
        assert [c.split()[-1] for c in captions] == [names[i] for i in best] and len(set(names)) == len(paths)
        # thumbnails are letterboxed, never cropped: the whole person shows
        import gradio as gr
        assert [b.object_fit for b in app.blocks.values() if isinstance(b, gr.Gallery)] == ["contain"]
    finally:
        app.close()
