"""One table, one name per dataset: every place that needs a dataset's facts reads data.DATASETS."""

import warnings

import numpy as np
import pytest
import torch

from mcja_hub.data import DATASETS, dataset, detect_layout
from mcja_hub.data.builder import VIReIDBuilder


def test_one_name_per_dataset_and_old_spellings_warn():
    assert sorted(DATASETS) == ["llcm", "regdb", "sysu_mm01"]
    for old in ("sysu", "sysu-mm01", "SYSU-MM01"):
        with pytest.warns(FutureWarning, match=rf"dataset name {old!r} is now 'sysu_mm01'"):
            assert dataset(old) is DATASETS["sysu_mm01"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current names never warn
        assert [dataset(n).name for n in DATASETS] == list(DATASETS)
    with pytest.raises(ValueError, match=r"unknown dataset 'market1501'; expected one of \['llcm', 'regdb', 'sysu_mm01'\]"):
        dataset("market1501")


def test_the_table_drives_builders_layouts_and_metric_rules(synthetic):
    assert {c.name for c in VIReIDBuilder.BUILDER_CONFIGS} == {"sysu_mm01", "llcm", *(f"regdb-split{s}" for s in range(1, 11))}
    for name, folder in (("sysu_mm01", "sysu"), ("regdb", "regdb"), ("llcm", "llcm")):
        assert detect_layout(synthetic[folder]) == name
        assert (synthetic[folder] / DATASETS[name].signature).is_file()
    # discard rules: SYSU cam3 queries ignore cam2 (the same room), LLCM the same identity and camera
    q_pids, g_pids = torch.tensor([1, 1]), torch.tensor([1, 2, 1])
    q_cams, g_cams = torch.tensor([3, 6]), torch.tensor([2, 6, 6])
    assert DATASETS["sysu_mm01"].discard(q_pids, g_pids, q_cams, g_cams).tolist() == [[True, False, False],
                                                                                       [False, True, True]]
    assert DATASETS["llcm"].discard(q_pids, g_pids, q_cams, g_cams).tolist() == [[False, False, False],
                                                                                  [False, False, True]]
    assert DATASETS["regdb"].discard is None
    assert [DATASETS[n].num_train_ids for n in DATASETS] == [395, 206, 713]


def test_old_names_and_arguments_still_work(synthetic, tmp_path):
    from mcja_hub.data import generate_synthetic, regdb_trials

    with pytest.warns(FutureWarning, match="'sysu' is now 'sysu_mm01'"):
        root = generate_synthetic(tmp_path / "s", "sysu", ids=5, seed=1, size=(32, 16), images_per_camera=(1, 2),
                                  workers=1)
    assert detect_layout(root) == "sysu_mm01"
    with pytest.warns(FutureWarning, match="trial= is now split="):
        old = regdb_trials(synthetic["regdb"], trial=3)
    new = regdb_trials(synthetic["regdb"], split=3)
    assert all(np.array_equal(a.gallery, b.gallery) for a, b in zip(old.trials, new.trials))
    with pytest.raises(TypeError, match="split=2 and its old name trial=3 disagree"):
        regdb_trials(synthetic["regdb"], split=2, trial=3)
    with pytest.raises(ValueError, match="need the split"):
        regdb_trials(synthetic["regdb"])


def test_cli_takes_old_names_with_one_line(tmp_path, capsys):
    from mcja_hub.cli import main

    assert main(["synth", "--layout", "sysu", "--out", str(tmp_path / "s"), "--ids", "5", "--height", "32",
                 "--width", "16", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "mcja: dataset name 'sysu' is now 'sysu_mm01'" in captured.err and "sysu_mm01 layout" in captured.out
    assert detect_layout(tmp_path / "s") == "sysu_mm01"
    with pytest.raises(SystemExit):
        main(["eval", "--model", "m", "--dataset", "market", "--data-dir", "d"])
    assert "unknown dataset 'market'" in capsys.readouterr().err
