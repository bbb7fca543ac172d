"""Converting a checkpoint of the released MCJA code (its module names, torch.save) into a model folder."""

import pytest
import torch

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.cli import main
from conftest import randomize_


def released_state_dict(model: MCJAModel) -> dict:
    """Our weights under the released code's names (docs/method.md §7), plus its unused ImageNet fc."""
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("mda."):
            _, stage, index, rest = k.split(".", 3)
            k = f"MDA_{stage[-1]}.{index}.{rest}"
        state[k] = v.clone()
    state["backbone.fc.weight"] = torch.randn(1000, 2048)
    state["backbone.fc.bias"] = torch.randn(1000)
    return state


@pytest.fixture(scope="module")
def original():
    torch.manual_seed(0)
    return randomize_(MCJAModel(MCJAConfig(num_classes=395, mda_layers=(0, 2, 3, 0), mda_m=2))).eval()


@pytest.mark.parametrize("wrap", ["flat", "nested", "dataparallel"])
def test_convert_released_checkpoint(original, tmp_path, wrap, capsys):
    state = released_state_dict(original)
    assert len(state) == 391 and "MDA_2.1.norm_bn.weight" in state  # the released SYSU checkpoint's key count
    if wrap == "nested":
        state = {"state_dict": state, "epoch": torch.tensor(80)}
    elif wrap == "dataparallel":
        state = {f"module.{k}": v for k, v in state.items()}
    torch.save(state, tmp_path / "SYSU_model_best-80.pth")
    assert main(["convert", "--checkpoint", str(tmp_path / "SYSU_model_best-80.pth"), "--out", str(tmp_path / "m")]) == 0
    converted = MCJAModel.from_pretrained(tmp_path / "m")
    assert converted.config.num_classes == 395 and converted.config.mda_layers == (0, 2, 3, 0)
    x = torch.randn(2, 3, 128, 64)
    assert torch.equal(converted.embed(x), original.embed(x))
    text = (tmp_path / "m" / "README.md").read_text()
    assert "converted from SYSU_model_best-80.pth, a checkpoint of the released MCJA code" in text
    assert "not evaluated here" in text and "No evaluation results recorded" in text and "model-index" not in text


def test_unmapped_keys_are_listed(original, tmp_path):
    state = released_state_dict(original)
    state["proj_head.weight"] = torch.zeros(3)
    state["aux.bias"] = torch.zeros(3)
    torch.save(state, tmp_path / "x.pth")
    with pytest.raises(ValueError, match=r"2 key\(s\) not in the released MCJA layout: \['proj_head.weight', 'aux.bias'\]"):
        main(["--debug", "convert", "--checkpoint", str(tmp_path / "x.pth"), "--out", str(tmp_path / "m")])


def test_mda_m_12_and_no_mda_and_the_dataset_on_the_card(tmp_path):
    from huggingface_hub import ModelCard

    torch.manual_seed(1)
    regdb = MCJAModel(MCJAConfig(num_classes=206, mda_layers=(0, 2, 3, 0), mda_m=12))
    state = released_state_dict(regdb)
    torch.save(state, tmp_path / "RegDB_model_best-300.pth")
    main(["convert", "--checkpoint", str(tmp_path / "RegDB_model_best-300.pth"), "--out", str(tmp_path / "r")])
    assert MCJAModel.from_pretrained(tmp_path / "r").config.mda_m == 12
    card = ModelCard.load(tmp_path / "r" / "README.md")
    assert card.data.datasets == ["regdb"] and "SYSU" not in card.text and not card.data.eval_results
    torch.save(state, tmp_path / "best.pth")  # no name to go by: 206 classes are RegDB's
    main(["convert", "--checkpoint", str(tmp_path / "best.pth"), "--out", str(tmp_path / "r2")])
    assert ModelCard.load(tmp_path / "r2" / "README.md").data.datasets == ["regdb"]
    main(["convert", "--checkpoint", str(tmp_path / "best.pth"), "--out", str(tmp_path / "r3"), "--dataset", "llcm"])
    assert ModelCard.load(tmp_path / "r3" / "README.md").data.datasets == ["llcm"]  # given beats inferred
    base = MCJAModel(MCJAConfig(num_classes=10))
    torch.save(released_state_dict(base), tmp_path / "b.pth")
    main(["convert", "--checkpoint", str(tmp_path / "b.pth"), "--out", str(tmp_path / "b")])
    assert MCJAModel.from_pretrained(tmp_path / "b").config.mda_layers == (0, 0, 0, 0)
    card = ModelCard.load(tmp_path / "b" / "README.md")
    assert not card.data.datasets and "dataset: not known (10 classes; give --dataset)" in card.text


def test_not_a_state_dict(tmp_path):
    torch.save({"epoch": 3, "note": "hi"}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="no state dict of tensors found"):
        main(["--debug", "convert", "--checkpoint", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "m")])


def test_card_command(tmp_path, capsys):
    import json

    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3)).save_pretrained(tmp_path / "m")
    metrics = {"R1": 50.0, "R5": 60.0, "R10": 70.0, "R20": 80.0, "mAP": 40.0, "mINP": 30.0}
    report = {"dataset": "regdb", "rerank": "none", "dedup_cmc": True, "split": 2,
              "results": {"visible->thermal": {**metrics, "std": {k: 0 for k in metrics}, "trials": 1, "cmc": [0] * 20}}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert main(["card", "--model", str(tmp_path / "m"), "--results", str(tmp_path / "r.json"), "--repo-id", "org/x"]) == 0
    text = (tmp_path / "m" / "README.md").read_text()
    assert 'from_pretrained("org/x")' in text and "RegDB split 2" in text and "config: visible->thermal split 2" in text


def test_card_command_keeps_the_training_record_and_replaces_results(tmp_path):
    import json

    from huggingface_hub import ModelCard

    from mcja_hub.hub import write_model_card

    folder = tmp_path / "m"
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3)).save_pretrained(folder)
    write_model_card(folder, None, {"epochs": "140", "model_selection": "best test-set Rank-1 over epochs (epoch 9)",
                                    "changed on resume": "optim.lr 0.001 -> 0.0005 at step 20", "dataset": "sysu_mm01"})
    metrics = {"R1": 50.0, "R5": 60.0, "R10": 70.0, "R20": 80.0, "mAP": 40.0, "mINP": 30.0}
    for r1 in (50.0, 55.5):  # a second report replaces the first one's results
        report = {"dataset": "sysu_mm01", "rerank": "none", "dedup_cmc": True, "split": None,
                  "results": {"all-search single-shot": {**metrics, "R1": r1, "std": {k: 0 for k in metrics},
                                                         "trials": 10, "cmc": [0] * 20}}}
        (tmp_path / "r.json").write_text(json.dumps(report))
        assert main(["card", "--model", str(folder), "--results", str(tmp_path / "r.json")]) == 0
    card = ModelCard.load(folder / "README.md")
    assert [r.metric_value for r in card.data.eval_results if r.metric_type == "rank-1"] == [55.5]
    assert "- epochs: 140" in card.text and "optim.lr 0.001 -> 0.0005 at step 20" in card.text
    assert "these numbers are optimistic" in card.text and "Not recorded." not in card.text
