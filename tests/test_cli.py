import json
import subprocess
import sys

import pytest

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.cli import main


def test_models_lists_registered(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == ["mcja_resnet50", "mcja_resnet50_mda"]


def test_info_reads_folder(tmp_path, capsys):
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=4)).save_pretrained(tmp_path / "m")
    assert main(["info", "--model", str(tmp_path / "m")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedding_dim"] == 512 and info["config"]["num_classes"] == 4
    assert info["parameters"] == sum(p.numel() for p in MCJAModel(MCJAConfig(backbone="resnet18", num_classes=4)).parameters())


def test_console_script_installed():
    exe = __import__("shutil").which("mcja", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the `mcja` console script is not installed next to this python"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("mcja-hub ")


def test_preview_augment_writes_grid(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 40, 3), dtype=np.uint8)).save(tmp_path / "p.jpg")
    assert main(["preview-augment", "--image", str(tmp_path / "p.jpg"), "--out", str(tmp_path / "g.png"), "-n", "3"]) == 0
    grid = Image.open(tmp_path / "g.png")
    assert grid.width > 100 and grid.height > grid.width  # 8 rows of 3 tall crops
    from mcja_hub.viz import augmentation_rows
    rows = augmentation_rows(Image.open(tmp_path / "p.jpg"), n=3)
    assert [len(imgs) for _, imgs in rows] == [1] + [3] * 7
    assert all(img.shape == (3, 384, 192) for _, imgs in rows for img in imgs)


def test_preview_augment_bad_image(tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert main(["preview-augment", "--image", str(tmp_path / "bad.jpg"), "--out", str(tmp_path / "g.png")]) == 2
    assert f"--image {tmp_path / 'bad.jpg'}: cannot read it as an image" in capsys.readouterr().err
    assert main(["preview-augment", "--image", str(tmp_path / "none.jpg"), "--out", str(tmp_path / "g.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_synth_then_detect(tmp_path, capsys):
    from mcja_hub.data import detect_layout

    assert main(["synth", "--layout", "regdb", "--out", str(tmp_path / "r"), "--ids", "4", "--workers", "1"]) == 0
    assert "wrote 80 images of 4 identities in the regdb layout" in capsys.readouterr().out
    assert detect_layout(tmp_path / "r") == "regdb"


def test_eval_command_writes_table_json_plot(synthetic, tmp_path, capsys):
    from PIL import Image

    MCJAModel(MCJAConfig(backbone="resnet18", input_size=(64, 32))).save_pretrained(tmp_path / "m")
    args = ["eval", "--model", str(tmp_path / "m"), "--dataset", "regdb", "--data-dir", str(synthetic["regdb"]),
            "--trial", "3", "--workers", "0", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "cmc.png")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "RegDB split 3 | re-ranking: none" in out and "visible->thermal" in out and "thermal->visible" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"] == str(tmp_path / "m") and set(report["results"]) == {"visible->thermal", "thermal->visible"}
    assert Image.open(tmp_path / "cmc.png").size[0] > 300
    # provenance: the generator's marker travels into the report, and a card made from it never claims RegDB
    assert report["data"]["synthetic"]["layout"] == "regdb" and len(report["data"]["fingerprint"]) == 16
    assert main(["card", "--model", str(tmp_path / "m"), "--results", str(tmp_path / "r.json")]) == 0
    from huggingface_hub import ModelCard
    card = ModelCard.load(tmp_path / "m" / "README.md")
    assert not card.data.datasets and {r.dataset_type for r in card.data.eval_results} == {"regdb-synthetic"}
    assert card.data.model_name.startswith("mcja-resnet18-synthetic") and "not the RegDB benchmark" in card.text


def test_embed_and_search(synthetic, tmp_path, capsys):
    from PIL import Image
    from safetensors import safe_open

    torch_model = MCJAModel(MCJAConfig(backbone="resnet18", input_size=(64, 32)))
    torch_model.save_pretrained(tmp_path / "m")
    gallery = synthetic["sysu"] / "cam1"
    assert main(["embed", "--model", str(tmp_path / "m"), "--images", str(gallery), "--out", str(tmp_path / "g.safetensors"),
                 "--workers", "0"]) == 0
    with safe_open(str(tmp_path / "g.safetensors"), "pt") as f:
        emb, paths = f.get_tensor("embeddings"), json.loads(f.metadata()["paths"])
    assert emb.shape == (len(list(gallery.rglob("*.jpg"))), 512) and paths[0].endswith(".jpg")
    query = next(synthetic["sysu"].glob("cam3/*/*.jpg"))
    for source in (str(tmp_path / "g.safetensors"), str(gallery)):
        capsys.readouterr()
        assert main(["search", "--model", str(tmp_path / "m"), "--query", str(query), "--gallery", source,
                     "--topk", "5", "--out", str(tmp_path / "r.png"), "--workers", "0"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert "cosine distance (lower is closer)" in lines[0]
        assert lines[1] == f"{query}:" and len([l for l in lines if l.startswith("    ")]) == 5
    grid = Image.open(tmp_path / "r.png")
    # 1 query row x (query + top 5) columns at the figure's 0.95 x 1.9 inches a cell (+0.4 margin), 110 dpi
    assert grid.size == (round((6 * 0.95 + 0.4) * 110), round(1 * 1.9 * 110))
    assert main(["search", "--model", str(tmp_path / "m"), "--query", str(query), str(query), "--gallery",
                 str(tmp_path / "g.safetensors"), "--topk", "3", "--out", str(tmp_path / "r2.png")]) == 0
    assert Image.open(tmp_path / "r2.png").size == (round((4 * 0.95 + 0.4) * 110), round(2 * 1.9 * 110))
    # a gallery embedded by another model is refused, naming both
    MCJAModel(MCJAConfig(backbone="resnet18", input_size=(64, 32))).save_pretrained(tmp_path / "other")
    assert main(["search", "--model", str(tmp_path / "other"), "--query", str(query), "--gallery",
                 str(tmp_path / "g.safetensors")]) == 2
    assert f"was embedded by another model ({tmp_path / 'm'}" in capsys.readouterr().err


def test_query_captions_tell_images_apart():
    from pathlib import Path

    from mcja_hub.search import distinct_names
    assert distinct_names([Path("/d/cam3/0001/0001.jpg"), Path("/d/cam6/0001/0001.jpg")]) == ["cam3/0001/0001.jpg",
                                                                                            "cam6/0001/0001.jpg"]
    assert distinct_names([Path("/d/a.jpg"), Path("/d/b.jpg")]) == ["a.jpg", "b.jpg"]


def test_embed_errors_name_the_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    MCJAModel(MCJAConfig(backbone="resnet18")).save_pretrained(tmp_path / "m")
    for folder, msg in ((tmp_path / "empty", "no .bmp/.jpeg/.jpg/.png images found"), (tmp_path / "nope", "not a folder")):
        assert main(["embed", "--model", str(tmp_path / "m"), "--images", str(folder), "--out", str(tmp_path / "x.safetensors")]) == 2
        assert msg in capsys.readouterr().err


def test_every_subcommand_names_a_missing_path_in_one_line(synthetic, tmp_path, capsys):
    MCJAModel(MCJAConfig(backbone="resnet18", input_size=(64, 32))).save_pretrained(tmp_path / "m")
    (tmp_path / "q.jpg").write_bytes(b"")
    model, missing, data = str(tmp_path / "m"), str(tmp_path / "missing"), str(synthetic["sysu"])
    cases = {
        "info": (["info", "--model", missing], f"--model {missing}: no such model folder"),
        "eval": (["eval", "--model", missing, "--dataset", "sysu_mm01", "--data-dir", data], "no such model folder"),
        "eval data": (["eval", "--model", model, "--dataset", "sysu_mm01", "--data-dir", missing],
                      f"--data-dir {missing}: no such folder"),
        "card": (["card", "--model", missing, "--results", missing], f"--model {missing}: no such folder"),
        "card results": (["card", "--model", model, "--results", missing], f"--results {missing}: no such file"),
        "convert": (["convert", "--checkpoint", missing, "--out", str(tmp_path / "c")], "--checkpoint"),
        "embed": (["embed", "--model", missing, "--images", data, "--out", str(tmp_path / "e.safetensors")],
                  "no such model folder"),
        "search": (["search", "--model", model, "--query", missing, "--gallery", data], f"--query {missing}: no such file"),
        "push": (["push", "--model", missing, "--repo", "org/x"], f"--model {missing}: no such folder"),
        "export-onnx": (["export-onnx", "--model", missing, "--out", str(tmp_path / "x.onnx")], "no such model folder"),
        "preview-augment": (["preview-augment", "--image", missing, "--out", str(tmp_path / "g.png")], "no such file"),
        "synth": (["synth", "--out", str(tmp_path / "m"), "--ids", "5"], "exists and is not empty"),
        "eval value": (["eval", "--model", model, "--dataset", "sysu_mm01", "--data-dir", data, "--trials", "11",
                        "--workers", "0"], "ValueError: SYSU-MM01 has 10 official trials, asked for 11"),
        "eval split": (["eval", "--model", model, "--dataset", "regdb", "--data-dir", str(synthetic["regdb"]),
                        "--workers", "0"], "RegDB evaluation needs the split the model was trained on"),
    }
    for name, (argv, message) in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"mcja {argv[0]}: ") and message in err and len(err.splitlines()) == 1, (name, err)
    with pytest.raises(ValueError):  # --debug: the traceback of the same error
        main(["--debug", "eval", "--model", model, "--dataset", "sysu_mm01", "--data-dir", data, "--trials", "11",
              "--workers", "0"])


@pytest.mark.parametrize("argv", [["eval", "--model", "m", "--dataset", "llcm", "--data-dir", "d", "--trials", "0"],
                                  ["search", "--model", "m", "--query", "q", "--gallery", "g", "--topk", "0"],
                                  ["synth", "--out", "o", "--ids", "-1"], ["eval", "--model", "m", "--dataset", "x"]])
def test_wrong_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "error: argument" in capsys.readouterr().err
