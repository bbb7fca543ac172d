"""save_pretrained / from_pretrained: local folders and Hub ids from a populated offline cache."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.hub import cache_model_folder
from conftest import randomize_

X = torch.randn(2, 3, 128, 64)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = randomize_(MCJAModel(MCJAConfig(num_classes=6, mda_layers=(0, 2, 3, 0), mda_m=3))).eval()
    folder = tmp_path_factory.mktemp("models") / "mcja-test"
    model.save_pretrained(folder)
    return model, folder


def test_folder_contents_and_card(saved):
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["mda_layers"] == [0, 2, 3, 0] and cfg["num_classes"] == 6 and cfg["mda_m"] == 3
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "mcja-hub"
    assert card.data.pipeline_tag == "image-feature-extraction"
    assert {"person-reid", "visible-infrared"} <= set(card.data.tags)


def test_model_files_are_readable_like_the_others(saved):
    modes = {p.name: p.stat().st_mode & 0o777 for p in saved[1].iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] and modes["model.safetensors"] & 0o044 == 0o044


def test_round_trip_identical_embeddings(saved):
    model, folder = saved
    loaded = MCJAModel.from_pretrained(folder)
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.embed(X), model.embed(X))  # tolerance 0
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_never_loads_pickle(saved, tmp_path, monkeypatch):
    # a folder whose only weights are a real pickled state dict: a clear error, and the pickle is never opened
    model, folder = saved
    copy = tmp_path / "pickled"
    copy.mkdir()
    shutil.copy(folder / "config.json", copy / "config.json")
    torch.save(model.state_dict(), copy / "pytorch_model.bin")

    def boom(*a, **k):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", boom)
    with pytest.raises(FileNotFoundError, match=r"model.safetensors not found.*mcja convert"):
        MCJAModel.from_pretrained(copy)
    MCJAModel.from_pretrained(folder)  # the safetensors folder loads without it


def test_hub_id_from_offline_cache(saved, tmp_path, monkeypatch):
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    model, folder = saved
    cache_model_folder(folder, "org/mcja-sysu", cache_dir=tmp_path, commit="a" * 40)
    loaded = MCJAModel.from_pretrained("org/mcja-sysu", cache_dir=tmp_path)
    assert torch.equal(loaded.embed(X), model.embed(X))
    # a revision given as a commit hash resolves to that snapshot
    loaded = MCJAModel.from_pretrained("org/mcja-sysu", cache_dir=tmp_path, revision="a" * 40)
    assert loaded.config == model.config


def test_hub_id_default_cache(saved, tmp_path, monkeypatch):
    """The plain one-liner, with the cache found through HF_HUB_CACHE as a user's machine would have it."""
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    model, folder = saved
    cache_model_folder(folder, "org/mcja-sysu", cache_dir=tmp_path, commit="a" * 40)
    assert torch.equal(MCJAModel.from_pretrained("org/mcja-sysu").embed(X), model.embed(X))


def test_hub_id_not_cached_offline_is_clear(tmp_path, monkeypatch):
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="config.json not found for 'org/absent'"):
        MCJAModel.from_pretrained("org/absent", cache_dir=tmp_path)


def test_pretrained_backbone_flag_never_downloads_on_load(saved, tmp_path, monkeypatch):
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty"))
    copy = _copy(saved[1], tmp_path, pretrained_backbone=True)
    loaded = MCJAModel.from_pretrained(copy)  # would raise if it tried to fetch ImageNet weights
    assert loaded.config.pretrained_backbone is True  # the record is kept


# --- clear errors ---------------------------------------------------------------------------------

def _copy(folder, tmp_path, **config_changes):
    """A copy of the saved model folder, with config.json fields changed."""
    copy = shutil.copytree(folder, tmp_path / "m")
    if config_changes:
        cfg = json.loads((copy / "config.json").read_text())
        cfg.update(config_changes)
        (copy / "config.json").write_text(json.dumps(cfg))
    return copy


def test_missing_weights_file(saved, tmp_path):
    copy = _copy(saved[1], tmp_path)
    (copy / "model.safetensors").unlink()
    (copy / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match=r"model.safetensors not found.*mcja convert"):
        MCJAModel.from_pretrained(copy)


def test_shape_mismatch_names_tensor(saved, tmp_path):
    copy = _copy(saved[1], tmp_path, num_classes=10)
    with pytest.raises(ValueError, match=r"shape mismatch \(1\): classifier.weight: checkpoint \(6, 2048\) vs model \(10, 2048\)"):
        MCJAModel.from_pretrained(copy)


def test_missing_and_unexpected_keys_named(saved, tmp_path):
    copy = _copy(saved[1], tmp_path, mda_layers=[0, 0, 3, 0])  # checkpoint has layer2 MDAs the config lacks
    with pytest.raises(ValueError, match=r"unexpected \(\d+\): mda.layer2.0"):
        MCJAModel.from_pretrained(copy)


def test_unknown_config_field_in_json(saved, tmp_path):
    copy = _copy(saved[1], tmp_path, hidden_size=768)
    with pytest.raises(ValueError, match=r"config.json: unknown MCJAConfig field\(s\) \['hidden_size'\]"):
        MCJAModel.from_pretrained(copy)


def test_overrides_at_load(saved):
    with pytest.raises(ValueError, match="classifier.weight"):
        MCJAModel.from_pretrained(saved[1], num_classes=3)


def test_cache_layout_is_what_hf_hub_download_reads(saved, tmp_path, monkeypatch):
    """The seeded cache is read by huggingface_hub itself (not only by our loader)."""
    import huggingface_hub.constants as c
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    snap = cache_model_folder(saved[1], "org/x", cache_dir=tmp_path, commit="b" * 40, ref="v1.0")
    path = hf_hub_download("org/x", "config.json", cache_dir=tmp_path, revision="v1.0")
    assert Path(path).read_bytes() == (saved[1] / "config.json").read_bytes()
    assert try_to_load_from_cache("org/x", "model.safetensors", cache_dir=tmp_path, revision="v1.0") == str(snap / "model.safetensors")
    with pytest.raises(ValueError, match="40 lowercase hex"):
        cache_model_folder(saved[1], "org/x", cache_dir=tmp_path, commit="main")


def test_write_model_card_model_index_round_trip(saved, tmp_path):
    from mcja_hub.hub import write_model_card

    copy = _copy(saved[1], tmp_path)
    metrics = {"R1": 61.234, "R5": 80.0, "R10": 88.0, "R20": 93.5, "mAP": 58.1, "mINP": 44.0}
    report = {"dataset": "sysu_mm01", "rerank": "none", "dedup_cmc": True, "trial": None,
              "results": {s: {**metrics, "std": {k: 0.5 for k in metrics}, "trials": 10, "cmc": [0] * 20}
                          for s in ("all-search single-shot", "indoor-search multi-shot")}}
    write_model_card(copy, report, {"epochs": 140, "model_selection": "best test-set Rank-1 over epochs"})
    card = ModelCard.load(copy / "README.md")
    results = card.data.eval_results
    assert len(results) == 2 * 5 and card.data.datasets == ["sysu-mm01"]
    r1 = [r for r in results if r.metric_type == "rank-1" and r.dataset_config == "all-search single-shot"]
    assert r1[0].metric_value == 61.23 and r1[0].dataset_name == "SYSU-MM01" and r1[0].dataset_split == "test"
    text = (copy / "README.md").read_text()
    assert "61.23 ±0.50" in text and "these numbers are optimistic" in text and "2048-d" in text
    # synthetic data is never labelled as the benchmark
    write_model_card(copy, report, {}, data_label="synthetic sysu_mm01 layout (mcja synth)")
    card = ModelCard.load(copy / "README.md")
    assert {r.dataset_type for r in card.data.eval_results} == {"sysu-mm01-synthetic"} and not card.data.datasets


@pytest.mark.parametrize("field", ["input_size", "mean", "std", "backbone"])
def test_config_without_its_preprocessing_is_refused(saved, tmp_path, field):
    copy = _copy(saved[1], tmp_path)
    cfg = json.loads((copy / "config.json").read_text())
    del cfg[field]
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=rf"config.json: missing field\(s\) \['{field}'\]"):
        MCJAModel.from_pretrained(copy)


@pytest.mark.parametrize("field,value,expected", [("num_classes", "6", "an integer"), ("num_classes", 6.0, "an integer"),
                                                  ("pretrained_backbone", "no", "true or false"),
                                                  ("input_size", [128], "a list of 2 integers"),
                                                  ("mean", "imagenet", "a list of 3 numbers"), ("backbone", 50, "a string")])
def test_config_field_types_named(saved, tmp_path, field, value, expected):
    copy = _copy(saved[1], tmp_path, **{field: value})
    with pytest.raises(ValueError, match=rf"config.json: field '{field}' must be {expected}, got"):
        MCJAModel.from_pretrained(copy)


def test_unreadable_config_and_weights_named(saved, tmp_path):
    copy = _copy(saved[1], tmp_path)
    good = (copy / "config.json").read_bytes()
    for content in (b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]"):
        (copy / "config.json").write_bytes(content)
        with pytest.raises(ValueError, match=r"config.json: (not a valid JSON config|expected a JSON object)"):
            MCJAModel.from_pretrained(copy)
    (copy / "config.json").write_bytes(good)
    weights = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(weights[: len(weights) // 2])  # truncated download
    with pytest.raises(ValueError, match=r"model.safetensors: not a readable safetensors file"):
        MCJAModel.from_pretrained(copy)


def test_non_finite_and_integer_weights_refused(saved, tmp_path):
    from safetensors.torch import load_file, save_file
    copy = _copy(saved[1], tmp_path)
    state = load_file(str(copy / "model.safetensors"))
    for change, message in ((lambda s: s["bn_neck.weight"].__setitem__(0, float("nan")),
                             r"non-finite values \(NaN / inf\) \(1\): bn_neck.weight"),
                            (lambda s: s.__setitem__("classifier.weight", s["classifier.weight"].int()),
                             r"dtype mismatch \(1\): classifier.weight: checkpoint torch.int32 vs model torch.float32")):
        bad = {k: v.clone() for k, v in state.items()}
        change(bad)
        save_file(bad, str(copy / "model.safetensors"))
        with pytest.raises(ValueError, match=message):
            MCJAModel.from_pretrained(copy)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}  # another float precision loads
    save_file(half, str(copy / "model.safetensors"))
    assert MCJAModel.from_pretrained(copy).classifier.weight.dtype == torch.float32


def test_the_cards_usage_snippet_runs_as_copied(saved, tmp_path, monkeypatch, capsys):
    """The card's Python block, copied as is, runs against the folder (named in it by --repo-id)."""
    import re

    from PIL import Image

    from mcja_hub.hub import write_model_card

    copy = _copy(saved[1], tmp_path)
    write_model_card(copy, None, None, repo_id=str(copy))
    text = (copy / "README.md").read_text()
    assert "pip install" in text
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    work = tmp_path / "work"
    work.mkdir()
    for i, name in enumerate(("query.jpg", "gallery_1.jpg", "gallery_2.jpg")):
        Image.new("L" if i == 2 else "RGB", (60, 150), 40 * i + 20).save(work / name)  # one infrared-like
    monkeypatch.chdir(work)
    exec(compile(snippet, "card-snippet", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"tensor\(\[\[-?[0-9.]+, -?[0-9.]+\]\]", printed), printed  # one query x two gallery scores


def test_timm_hf_hub_name_loads_the_folder_offline(saved, tmp_path):
    """config.json carries timm's fields: `timm.create_model("hf-hub:<repo>", pretrained=True)` builds the
    MCJAModel and loads its weights, from a seeded cache with HF_HUB_OFFLINE=1."""
    import timm

    model, folder = saved
    cache_model_folder(folder, "org/mcja-demo", cache_dir=tmp_path)
    loaded = timm.create_model("hf-hub:org/mcja-demo", pretrained=True, cache_dir=tmp_path)
    x = torch.randn(2, 3, 128, 64)
    assert isinstance(loaded, MCJAModel) and torch.equal(loaded.embed(x), model.embed(x))
    assert loaded.pretrained_cfg["hf_hub_id"] == "org/mcja-demo"
    assert timm.data.resolve_data_config(model=loaded)["input_size"] == (3, *model.config.input_size)
    # a registered name: pretrained=True means MCJA weights, named by the pretrained config
    named = timm.create_model("mcja_resnet50_mda", pretrained=True, cache_dir=tmp_path, mda_m=3,
                              pretrained_cfg_overlay={"hf_hub_id": "org/mcja-demo"})
    assert torch.equal(named.embed(x), model.embed(x))
    assert timm.create_model("hf-hub:org/mcja-demo", pretrained=True, cache_dir=tmp_path, num_classes=9).num_classes == 9
    with pytest.raises(ValueError, match=r"\['mda_m'\] differ from the loaded model's config"):
        timm.create_model("hf-hub:org/mcja-demo", pretrained=True, cache_dir=tmp_path, mda_m=4)
    with pytest.raises(ValueError, match="none is published for mcja_resnet50.*pretrained_backbone=True for an ImageNet"):
        timm.create_model("mcja_resnet50", pretrained=True)
