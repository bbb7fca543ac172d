"""Protocol builders on synthetic trees of each layout."""

import shutil
from collections import Counter

import numpy as np
import pytest

from mcja_hub.evaluation import discard_mask
from mcja_hub.data.trials import llcm_trials, regdb_trials, sysu_trials
from mcja_hub.data.layouts import LayoutError


def _sysu_images(root, ids):
    c = Counter()
    for p in root.glob("cam*/*/*.jpg"):
        if int(p.parent.name) in ids:
            c[(int(p.parent.parent.name[3:]), int(p.parent.name))] += 1
    return c


@pytest.mark.parametrize("mode,cams", [("all", (1, 2, 4, 5)), ("indoor", (1, 2))])
@pytest.mark.parametrize("shots", [1, 10])
def test_sysu_gallery_sizes_and_queries(synthetic, mode, cams, shots):
    root = synthetic["sysu"]
    test_ids = {int(t) for t in (root / "exp/test_id.txt").read_text().strip().split(",")}
    counts = _sysu_images(root, test_ids)
    proto = sysu_trials(root, mode=mode, shots=shots)
    assert len(proto.trials) == 10 and proto.settings() == [f"{mode}-search {'single' if shots == 1 else 'multi'}-shot"]
    expected = sum(min(shots, n) for (cam, pid), n in counts.items() if cam in cams)
    pids, camids, mods = proto.arrays()
    for trial in proto.trials:
        assert len(trial.gallery) == expected and len(set(trial.gallery.tolist())) == expected
        assert set(camids[trial.gallery]) <= set(cams) and set(mods[trial.gallery]) == {0}
        # every test image of cams 3 and 6 is a query, in every trial
        assert sorted(proto.records[i].path for i in trial.query) == sorted(
            p.relative_to(root).as_posix() for p in root.glob("cam[36]/*/*.jpg") if int(p.parent.name) in test_ids)
    if shots == 1:  # the official permutations give different single-shot galleries across trials
        assert len({tuple(t.gallery) for t in proto.trials}) > 1


def test_sysu_gallery_follows_rand_perm_cam(synthetic):
    from scipy.io import loadmat
    root = synthetic["sysu"]
    perm = loadmat(root / "exp/rand_perm_cam.mat")["rand_perm_cam"]
    proto = sysu_trials(root, mode="all", shots=1, trials=3)
    for t, trial in enumerate(proto.trials):
        for i in trial.gallery:
            r = proto.records[i]
            number = int(r.path.split("/")[-1][:4])
            assert perm[r.camera_id - 1, 0][r.person_id - 1, 0][t][0] == number


def test_sysu_cam3_queries_never_see_cam2(synthetic):
    proto = sysu_trials(synthetic["sysu"], mode="indoor", shots=10, trials=1)
    pids, cams, _ = proto.arrays()
    t = proto.trials[0]
    import torch
    mask = discard_mask(torch.tensor(pids[t.query]), torch.tensor(pids[t.gallery]), torch.tensor(cams[t.query]),
                        torch.tensor(cams[t.gallery]), "sysu_mm01").numpy()
    q3 = cams[t.query] == 3
    assert q3.any() and (cams[t.gallery] == 2).any()
    assert mask[q3][:, cams[t.gallery] == 2].all() and not mask[q3][:, cams[t.gallery] != 2].any()
    assert not mask[~q3].any()  # cam-6 queries lose nothing (no IR gallery)


def test_sysu_errors(synthetic, tmp_path):
    root = shutil.copytree(synthetic["sysu"], tmp_path / "S")
    with pytest.raises(ValueError, match="mode must be 'all' or 'indoor'"):
        sysu_trials(root, mode="outdoor")
    with pytest.raises(ValueError, match="shots must be 1"):
        sysu_trials(root, shots=5)
    victim = next(p for p in sorted(root.glob("cam1/*/0001.jpg")) if int(p.parent.name) in
                  {int(x) for x in (root / "exp/test_id.txt").read_text().split(",")})
    victim.rename(victim.with_name("0999.jpg"))
    with pytest.raises(LayoutError, match=r"rand_perm_cam.mat names cam1/\d{4}/0001"):
        sysu_trials(root, mode="all", shots=10)
    (root / "exp/rand_perm_cam.mat").write_bytes(b"junk")
    with pytest.raises(LayoutError, match="not a readable MATLAB file"):
        sysu_trials(root)
    (root / "exp/rand_perm_cam.mat").unlink()
    with pytest.raises(LayoutError, match="rand_perm_cam.mat: missing"):
        sysu_trials(root)


def test_regdb_both_directions(synthetic):
    proto = regdb_trials(synthetic["regdb"], split=4)
    assert proto.settings() == ["visible->thermal", "thermal->visible"]
    _, _, mods = proto.arrays()
    v2t, t2v = proto.trials
    assert (mods[v2t.query] == 0).all() and (mods[v2t.gallery] == 1).all()
    assert np.array_equal(v2t.query, t2v.gallery) and np.array_equal(v2t.gallery, t2v.query)
    assert len(v2t.query) == len(v2t.gallery) == 50  # 5 test ids x 10 images


def test_llcm_trials(synthetic):
    proto = llcm_trials(synthetic["llcm"], trials=3)
    pids, cams, mods = proto.arrays()
    assert proto.settings() == ["infrared->visible", "visible->infrared"]
    i2v = [t for t in proto.trials if t.setting == "infrared->visible"]
    for t in i2v:
        assert (mods[t.query] == 1).all() and len(t.query) == (mods == 1).sum()
        keys = list(zip(pids[t.gallery], cams[t.gallery]))
        assert len(keys) == len(set(keys)) == len({(p, c) for p, c, m in zip(pids, cams, mods) if m == 0})
    assert len({tuple(t.gallery) for t in i2v}) > 1  # a new draw per trial
    again = llcm_trials(synthetic["llcm"], trials=3)
    assert all(np.array_equal(a.gallery, b.gallery) for a, b in zip(proto.trials, again.trials))  # seeded
    with pytest.raises(ValueError, match="at least 1 trial, asked for 0"):
        llcm_trials(synthetic["llcm"], trials=0)


def test_sysu_settings_equal_separate_calls(synthetic):
    from mcja_hub.data.trials import sysu_settings
    together = sysu_settings(synthetic["sysu"], [("all", 1), ("indoor", 10)], trials=2)
    for proto, (mode, shots) in zip(together, [("all", 1), ("indoor", 10)]):
        alone = sysu_trials(synthetic["sysu"], mode=mode, shots=shots, trials=2)
        assert [r.path for r in proto.records] == [r.path for r in alone.records]
        assert all(np.array_equal(a.gallery, b.gallery) and np.array_equal(a.query, b.query)
                   for a, b in zip(proto.trials, alone.trials))


def _rewrite_perm(root, change):
    from scipy.io import loadmat, savemat
    mat = loadmat(str(root / "exp/rand_perm_cam.mat"))
    change(mat["rand_perm_cam"])
    savemat(str(root / "exp/rand_perm_cam.mat"), {"rand_perm_cam": mat["rand_perm_cam"]})


def test_malformed_rand_perm_cells_are_named(synthetic, tmp_path):
    root = shutil.copytree(synthetic["sysu"], tmp_path / "S")
    test_ids = [int(x) for x in (root / "exp/test_id.txt").read_text().split(",")]
    pid = next(p for p in test_ids if (root / f"cam1/{p:04d}").is_dir())
    n = len(list((root / f"cam1/{pid:04d}").glob("*.jpg")))
    original = (root / "exp/rand_perm_cam.mat").read_bytes()
    cases = [  # (change of camera 1's cell of that id, what the error says)
        (lambda cell: cell[:3], rf"camera 1, id {pid}: permutations of shape \(3, {n}\), expected \(10 trials, {n} images\)"),
        (lambda cell: cell[:, :-1], rf"camera 1, id {pid}: permutations of shape \(10, {n - 1}\)"),
        (lambda cell: np.where(cell == 1, 2, cell).astype(cell.dtype),
         rf"camera 1, id {pid}, trial 1: .* is not a permutation of 1..{n}"),
    ]
    for change, message in cases:
        (root / "exp/rand_perm_cam.mat").write_bytes(original)

        def edit(perm, change=change):
            cells = perm[0, 0]
            cells[pid - 1, 0] = change(cells[pid - 1, 0])
        _rewrite_perm(root, edit)
        with pytest.raises(LayoutError, match=message):
            sysu_trials(root, mode="all", shots=10)


def test_duplicate_and_overlapping_ids_are_named(synthetic, tmp_path):
    from mcja_hub.data.layouts import read_regdb, read_sysu
    root = shutil.copytree(synthetic["sysu"], tmp_path / "S")
    train = (root / "exp/train_id.txt").read_text().strip()
    first = train.split(",")[0]
    (root / "exp/train_id.txt").write_text(f"{train},{first}")
    with pytest.raises(LayoutError, match=rf"train_id.txt: id\(s\) \[{int(first)}\] listed more than once"):
        read_sysu(root)
    (root / "exp/train_id.txt").write_text(train)
    val = (root / "exp/val_id.txt").read_text().strip()
    (root / "exp/val_id.txt").write_text(f"{val},{first}")
    with pytest.raises(LayoutError, match=rf"ids \[{int(first)}\] are in both train_id.txt and val_id.txt"):
        read_sysu(root)
    reg = shutil.copytree(synthetic["regdb"], tmp_path / "R")
    index = reg / "idx/train_visible_1.txt"
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines + [lines[0]]) + "\n")
    with pytest.raises(LayoutError, match=rf"train_visible_1.txt:{len(lines) + 1}: .* already listed on line 1"):
        read_regdb(reg, 1)
    test_line = (reg / "idx/test_visible_1.txt").read_text().splitlines()[0]
    index.write_text("\n".join(lines + [test_line]) + "\n")
    with pytest.raises(LayoutError, match=r"split 1 has ids \[\d+\] in both its train and test index files"):
        read_regdb(reg, 1)
