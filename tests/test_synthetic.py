"""The synthetic generator writes the official layouts (docs/method.md §6) and a sensible VI-ReID problem."""

import hashlib
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from mcja_hub.data import generate_synthetic
from mcja_hub.data.synthetic import make_camera, make_identity, render


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def _ids(path: Path) -> list[int]:
    text = path.read_text()
    assert text.count("\n") == 1 and re.fullmatch(r"\d+(,\d+)*\n", text), f"{path}: not one comma-separated line"
    return [int(t) for t in text.strip().split(",")]


def test_sysu_layout(synthetic):
    root = synthetic["sysu"]
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert files and all(re.fullmatch(r"cam[1-6]/\d{4}/\d{4}\.jpg", f) for f in files)
    train, val, test = (_ids(root / "exp" / f"{n}_id.txt") for n in ("train", "val", "test"))
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    assert sorted(train + val + test) == list(range(1, 21))
    # images are numbered 0001.. contiguously per (camera, id)
    per = {}
    for f in files:
        cam, pid, n = f.split("/")
        per.setdefault((int(cam[3:]), int(pid)), []).append(int(n[:4]))
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in per.values())
    # every id is seen by an indoor RGB camera and an IR camera (so it can be a query)
    for pid in range(1, 21):
        assert (1, pid) in per or (2, pid) in per
        assert (3, pid) in per or (6, pid) in per
    # not every id in every camera (as in the real data)
    assert len(per) < 20 * 6

    mat = loadmat(root / "exp" / "rand_perm_cam.mat")["rand_perm_cam"]
    assert mat.shape == (6, 1) and mat.dtype == object
    for c in range(1, 7):
        cell = mat[c - 1, 0]
        last = max(pid for (cam, pid) in per if cam == c)  # as the real file: up to the camera's last id
        assert cell.shape == (last, 1) and cell.dtype == object
        for pid in range(1, last + 1):
            entry = cell[pid - 1, 0]
            n = len(per.get((c, pid), []))
            if n == 0:
                assert entry.size == 0
            else:
                assert entry.dtype == np.uint8 and entry.shape == (10, n)
                assert all(sorted(row) == list(range(1, n + 1)) for row in entry.tolist())


def test_regdb_layout(synthetic):
    root = synthetic["regdb"]
    for folder, tag in (("Visible", "v"), ("Thermal", "t")):
        for pid in range(1, 11):
            names = sorted(p.name for p in (root / folder / str(pid)).iterdir())
            assert len(names) == 10
            assert all(re.fullmatch(rf"(male|female)_(front|back)_{tag}_\d{{5}}_{pid}\.bmp", n) for n in names)
    for trial in range(1, 11):
        ids = {}
        for split in ("train", "test"):
            for kind in ("visible", "thermal"):
                lines = (root / "idx" / f"{split}_{kind}_{trial}.txt").read_text().splitlines()
                pairs = [line.split(" ") for line in lines]
                assert all(len(p) == 2 for p in pairs)
                assert all((root / p[0]).is_file() and p[0].startswith(kind.capitalize() + "/") for p in pairs)
                labels = [int(p[1]) for p in pairs]
                assert sorted(set(labels)) == list(range(len(set(labels))))  # 0-based within the file
                ids.setdefault(split, set()).update(int(p[0].split("/")[1]) for p in pairs)
                assert len(lines) == 10 * len(set(labels))
        assert not ids["train"] & ids["test"] and len(ids["train"]) == len(ids["test"]) == 5


def test_llcm_layout(synthetic):
    root = synthetic["llcm"]
    test_ids = _ids(root / "idx" / "test_id.txt")
    for kind in ("vis", "nir"):
        lines = (root / "idx" / f"train_{kind}.txt").read_text().splitlines()
        assert lines and all(re.fullmatch(rf"train_{kind}/cam\d/\d{{4}}/\d{{4}}_c\d\d_s\d+_f\d+_{kind}\.jpg \d+", l)
                             for l in lines)
        assert not {int(l.split(" ")[1]) for l in lines} & set(test_ids)
    assert not (root / "test_nir" / "cam3").exists()  # no NIR camera 3 in the test set
    assert {int(p.name) for p in (root / "test_vis").glob("cam*/*")} == set(test_ids)


def test_deterministic_for_a_seed_and_worker_count(tmp_path, monkeypatch):
    a = generate_synthetic(tmp_path / "a", "sysu_mm01", ids=6, seed=5, workers=1)
    monkeypatch.setattr(time, "asctime", lambda *_: "another day")  # scipy's savemat stamps the time
    b = generate_synthetic(tmp_path / "b", "sysu_mm01", ids=6, seed=5, workers=2)
    c = generate_synthetic(tmp_path / "c", "sysu_mm01", ids=6, seed=6, workers=1)
    assert _tree_hash(a) == _tree_hash(b) != _tree_hash(c)


def test_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'market'"):
        generate_synthetic(tmp_path / "x", "market")
    with pytest.raises(ValueError, match="at least 5 identities"):
        generate_synthetic(tmp_path / "x", "sysu_mm01", ids=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic(tmp_path / "full", "sysu_mm01")


def test_infrared_has_no_hue_and_colour_carries_no_identity_across_modalities():
    """IR images are gray; a colour-histogram matcher is near chance IR->VIS but good VIS->VIS."""
    n_ids, seed = 40, 11
    rng = np.random.default_rng(0)
    cams = {"vis_a": make_camera(1, False, False, seed), "vis_b": make_camera(4, False, True, seed),
            "ir": make_camera(3, True, False, seed)}

    def hist(img):
        # chromaticity (r, g) / (r + g + b) over the central person region, 8 x 8 bins
        x = img[16:120, 16:48].reshape(-1, 3).astype(float) + 1
        chroma = x[:, :2] / x.sum(1, keepdims=True)
        q = np.minimum((chroma * 8).astype(int), 7)
        h = np.bincount(q[:, 0] * 8 + q[:, 1], minlength=64).astype(float)
        return h / np.linalg.norm(h)

    feats = {k: [] for k in cams}
    for pid in range(n_ids):
        ident = make_identity(pid, seed)
        for k, cam in cams.items():
            img = render(ident, cam, rng, 128, 64)
            if k == "ir":
                assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
            feats[k].append(hist(img))

    def rank1(q, g):
        return float(np.mean(np.argmax(np.array(q) @ np.array(g).T, axis=1) == np.arange(n_ids)))

    cross, within = rank1(feats["ir"], feats["vis_a"]), rank1(feats["vis_b"], feats["vis_a"])
    chance = 1 / n_ids
    print(f"colour-histogram R1: IR->VIS {cross:.3f}, VIS->VIS {within:.3f}, chance {chance:.3f}")
    assert cross < 3 * chance, cross  # near chance: colour says nothing across modalities
    assert within > 6 * chance, within  # colour works within the visible modality
