"""datasets builders on synthetic data of each layout: counts equal the files, labels, errors."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from mcja_hub.data import LayoutError, detect_layout, load_vireid, read_llcm, read_regdb, read_sysu


def _disk_counts_sysu(root: Path, ids):
    c = Counter()
    for p in root.glob("cam*/*/*.jpg"):
        cam, pid = int(p.parent.parent.name[3:]), int(p.parent.name)
        if pid in ids:
            c[(int(cam in (3, 6)), cam)] += 1
    return c


def _ids(path):
    return [int(t) for t in path.read_text().strip().split(",")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-datasets")


def test_sysu_builder_counts_and_labels(synthetic, cache):
    root = synthetic["sysu"]
    dsd = load_vireid("sysu_mm01", root, cache_dir=cache)
    train_ids = _ids(root / "exp/train_id.txt") + _ids(root / "exp/val_id.txt")
    test_ids = _ids(root / "exp/test_id.txt")
    for split, ids in (("train", train_ids), ("test", test_ids)):
        ds = dsd[split]
        assert Counter(zip(ds["modality"], ds["camera_id"])) == _disk_counts_sysu(root, set(ids))
        assert set(ds["person_id"]) == set(ids)
    ds = dsd["train"]
    labels = dict(zip(ds["person_id"], ds["label"]))
    assert [labels[pid] for pid in train_ids] == list(range(len(train_ids)))  # contiguous, id-file order
    assert set(dsd["test"]["label"]) == {-1}
    row = ds[0]
    assert row["image"].size == (64, 128) and (root / row["path"]).is_file()
    assert row["image"].tobytes() == __import__("PIL.Image", fromlist=["x"]).open(root / row["path"]).convert("RGB").tobytes()


def test_regdb_builder_splits(synthetic, cache):
    root = synthetic["regdb"]
    for split in (1, 7):
        dsd = load_vireid("regdb", root, cache_dir=cache, split=split)
        for part in ("train", "test"):
            lines = [l for kind in ("visible", "thermal")
                     for l in (root / f"idx/{part}_{kind}_{split}.txt").read_text().splitlines()]
            ds = dsd[part]
            assert sorted(ds["path"]) == sorted(l.split(" ")[0] for l in lines)
            assert Counter(zip(ds["modality"], ds["camera_id"])) == {(0, 2): len(lines) // 2, (1, 3): len(lines) // 2}
        assert sorted(set(dsd["train"]["label"])) == list(range(5))
        first_visible = (root / f"idx/train_visible_{split}.txt").read_text().splitlines()[0].split(" ")[0]
        assert dsd["train"].filter(lambda r, path=first_visible: r["path"] == path)[0]["label"] == 0


def test_llcm_builder(synthetic, cache):
    root = synthetic["llcm"]
    dsd = load_vireid(None, root, cache_dir=cache)  # detected from the folder
    train_lines = [l for k in ("vis", "nir") for l in (root / f"idx/train_{k}.txt").read_text().splitlines()]
    assert sorted(dsd["train"]["path"]) == sorted(l.split(" ")[0] for l in train_lines)
    test_files = sorted(p.relative_to(root).as_posix() for p in root.glob("test_*/cam*/*/*.jpg"))
    assert sorted(dsd["test"]["path"]) == test_files
    nir = dsd["test"].filter(lambda r: r["modality"] == 1)
    assert 3 not in set(nir["camera_id"])
    assert sorted(set(dsd["train"]["label"])) == list(range(len({l.split(" ")[1] for l in train_lines})))


def test_root_containing_cam_does_not_confuse_llcm(synthetic, tmp_path):
    root = shutil.copytree(synthetic["llcm"], tmp_path / "camera_data" / "cam9_LLCM")
    assert {r.camera_id for r in read_llcm(root)["train"]} == {r.camera_id for r in read_llcm(synthetic["llcm"])["train"]}


def test_changed_folder_is_reprepared(synthetic, tmp_path, cache):
    root = shutil.copytree(synthetic["regdb"], tmp_path / "RegDB")
    n1 = len(load_vireid("regdb", root, cache_dir=cache)["train"])
    idx = root / "idx/train_visible_1.txt"
    idx.write_text("\n".join(idx.read_text().splitlines()[:-3]) + "\n")
    assert len(load_vireid("regdb", root, cache_dir=cache)["train"]) == n1 - 3


# --- bad input: each names the path and what was expected --------------------------------------------

@pytest.fixture
def sysu_copy(synthetic, tmp_path):
    return shutil.copytree(synthetic["sysu"], tmp_path / "SYSU")


def test_missing_camera_folder(sysu_copy):
    shutil.rmtree(sysu_copy / "cam4")
    with pytest.raises(LayoutError, match=r"cam4: missing; expected SYSU-MM01 camera folders cam1..cam6"):
        read_sysu(sysu_copy)


def test_missing_id_file(sysu_copy):
    (sysu_copy / "exp/val_id.txt").unlink()
    with pytest.raises(LayoutError, match=r"val_id.txt: missing; expected an id file"):
        read_sysu(sysu_copy)


def test_malformed_id_file(sysu_copy):
    (sysu_copy / "exp/test_id.txt").write_text("1, 2, x3\n")
    with pytest.raises(LayoutError, match=r"test_id.txt: 'x3' is not an integer id"):
        read_sysu(sysu_copy)


def test_id_with_no_images(sysu_copy):
    pid = _ids(sysu_copy / "exp/test_id.txt")[0]
    for d in sysu_copy.glob(f"cam*/{pid:04d}"):
        shutil.rmtree(d)
    with pytest.raises(LayoutError, match=rf"test_id.txt: id {pid} has no images"):
        read_sysu(sysu_copy)


def test_corrupt_image_fails_before_training(sysu_copy, cache):
    victim = sorted(sysu_copy.glob("cam1/*/*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    (sysu_copy / "cam2").joinpath(sorted(p.name for p in (sysu_copy / "cam2").iterdir())[0], "0001.jpg").write_bytes(b"junk")
    with pytest.raises(LayoutError, match=r"2 unreadable or corrupt image\(s\):\n  .*cam1/.*jpg"):
        load_vireid("sysu_mm01", sysu_copy, cache_dir=cache)


def test_layout_matching_nothing(tmp_path):
    (tmp_path / "some" / "images").mkdir(parents=True)
    with pytest.raises(LayoutError, match=r"matches no known dataset layout \(looked for sysu_mm01: exp/train_id.txt"):
        detect_layout(tmp_path / "some")
    with pytest.raises(LayoutError, match="no such folder"):
        load_vireid(None, tmp_path / "absent")


def test_wrong_builder_for_layout(synthetic, cache):
    with pytest.raises(LayoutError, match=r"this is a regdb layout, not sysu_mm01"):
        load_vireid("sysu_mm01", synthetic["regdb"], cache_dir=cache)


def test_regdb_bad_index_lines(synthetic, tmp_path):
    root = shutil.copytree(synthetic["regdb"], tmp_path / "RegDB")
    idx = root / "idx/test_thermal_2.txt"
    lines = idx.read_text().splitlines()
    idx.write_text("\n".join(lines[:3] + [lines[3] + " extra"] + lines[4:]))
    with pytest.raises(LayoutError, match=r"test_thermal_2.txt:4: .*expected exactly '<relative path> <integer label>'"):
        read_regdb(root, split=2)
    idx.write_text("\n".join(lines[:3] + ["Thermal/1/missing.bmp 0"] + lines[4:]))
    with pytest.raises(LayoutError, match=r"test_thermal_2.txt:4: image .*missing.bmp does not exist"):
        read_regdb(root, split=2)
    (root / "idx/train_visible_5.txt").unlink()
    with pytest.raises(LayoutError, match=r"train_visible_5.txt: missing"):
        read_regdb(root, split=5)
    with pytest.raises(ValueError, match="split must be 1..10"):
        read_regdb(root, split=11)


def test_llcm_missing_test_folder(synthetic, tmp_path):
    root = shutil.copytree(synthetic["llcm"], tmp_path / "LLCM")
    shutil.rmtree(root / "test_nir")
    with pytest.raises(LayoutError, match=r"test_nir: missing; expected LLCM test folder"):
        read_llcm(root)


def test_unknown_dataset_and_options(synthetic, cache):
    with pytest.raises(ValueError, match="unknown dataset 'market1501'"):
        load_vireid("market1501", synthetic["sysu"], cache_dir=cache)
    with pytest.raises(TypeError, match=r"unexpected option split=2 \(sysu_mm01 has one train/test split\)"):
        load_vireid("sysu_mm01", synthetic["sysu"], cache_dir=cache, split=2)


def test_counts_logged_once_per_load(synthetic, cache, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="mcja_hub.data"):
        dsd = load_vireid("regdb", synthetic["regdb"], cache_dir=cache, split=3)
    lines = [r.getMessage() for r in caplog.records if r.name == "mcja_hub.data"]
    n = len(dsd["train"])
    assert lines == [f"regdb train: {n} images, 5 ids (VIS cam2: {n // 2}, IR cam3: {n // 2})",
                     f"regdb test: {len(dsd['test'])} images, 5 ids (VIS cam2: {len(dsd['test']) // 2}, "
                     f"IR cam3: {len(dsd['test']) // 2})"]
