"""Readers of the official on-disk dataset layouts (docs/method.md §6) into plain records, with clear errors.

A bottom layer with no ``datasets`` import: the builders, the trials and the synthetic writers read and
write files through it. Every problem names the file (and line) and what was expected. Which reader
belongs to which dataset is in ``catalog.DATASETS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
SYSU_CAMERAS = (1, 2, 3, 4, 5, 6)
SYSU_IR_CAMERAS = (3, 6)  # cam3 is indoor (the room of cam2), cam6 outdoor
SYSU_OUTDOOR_CAMERAS = (4, 5, 6)
REGDB_VISIBLE_CAMERA, REGDB_THERMAL_CAMERA = 2, 3  # as the released code labels them


SYNTHETIC_MARKER = "mcja_synthetic.json"  # written by the synthetic generator into the dataset root


class LayoutError(ValueError):
    """The folder does not have the layout the dataset needs; the message says where and what."""


@dataclass(frozen=True)
class Record:
    path: str  # relative to the dataset root, with forward slashes
    person_id: int  # the dataset's own id
    camera_id: int
    modality: int  # 0 visible, 1 infrared
    label: int = -1  # contiguous training label, -1 outside the training split


def renamed(new_value, old_value, new: str, old: str):
    """``new_value``, or ``old_value`` of a renamed argument (with a FutureWarning) when only that is given."""
    if old_value is None:
        return new_value
    if new_value is not None and new_value != old_value:
        raise TypeError(f"{new}={new_value!r} and its old name {old}={old_value!r} disagree; give {new} only")
    warnings.warn(f"{old}= is now {new}=; the old name works until the next release", FutureWarning, stacklevel=3)
    return old_value


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise LayoutError(f"{path}: missing; expected {what}")
    return path


def read_id_file(path: Path) -> list[int]:
    """SYSU / LLCM id lists: one line of comma-separated integers."""
    _require(path, "an id file: one line of comma-separated integer ids")
    text = path.read_text().strip()
    if not text:
        raise LayoutError(f"{path}: empty; expected one line of comma-separated integer ids")
    ids = []
    for token in text.replace("\n", ",").split(","):
        token = token.strip()
        if not token:
            continue
        if not token.isdigit():
            raise LayoutError(f"{path}: {token!r} is not an integer id (expected e.g. '1,2,4,5')")
        ids.append(int(token))
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise LayoutError(f"{path}: id(s) {repeated[:10]} listed more than once (their images would count twice)")
    return ids


def fingerprint(root: str | os.PathLike) -> str:
    """Cheap content fingerprint (names, sizes, mtimes): a changed folder never reuses a stale cache."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def synthetic_marker(root: str | Path) -> dict | None:
    """What the synthetic generator recorded about a folder it wrote (layout, seed, ids, version), or
    None for real data. Reports and cards use it, whatever a config says."""
    path = Path(root) / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return {"note": f"{path} exists but is unreadable"}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def image_files(folder: str | Path) -> list[Path]:
    """All images under ``folder`` (recursively, sorted); an error naming the folder if there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no {'/'.join(sorted(IMAGE_SUFFIXES))} images found")
    return files


def _relabel(records: list[Record], order: list[int]) -> list[Record]:
    labels = {pid: i for i, pid in enumerate(dict.fromkeys(order))}
    return [Record(r.path, r.person_id, r.camera_id, r.modality, labels[r.person_id]) for r in records]


# ----------------------------------------------------------------------------------------------------
# SYSU-MM01


def read_sysu(root: str | Path) -> dict[str, list[Record]]:
    """train = train_id ∪ val_id (labels in file order), test = test_id; all six cameras."""
    root = Path(root)
    for cam in SYSU_CAMERAS:
        _require(root / f"cam{cam}", "SYSU-MM01 camera folders cam1..cam6")
    exp = root / "exp"
    train_only, val_ids = read_id_file(exp / "train_id.txt"), read_id_file(exp / "val_id.txt")
    both = sorted(set(train_only) & set(val_ids))
    if both:
        raise LayoutError(f"{exp}: ids {both[:10]} are in both train_id.txt and val_id.txt (their images would count twice)")
    train_ids = train_only + val_ids
    test_ids = read_id_file(exp / "test_id.txt")
    overlap = sorted(set(train_ids) & set(test_ids))
    if overlap:
        raise LayoutError(f"{exp}: ids {overlap[:10]} are in both train/val and test id files")
    splits = {}
    for split, ids, source in (("train", train_ids, "train_id.txt/val_id.txt"), ("test", test_ids, "test_id.txt")):
        records = []
        for pid in ids:
            found = [Record(f"cam{cam}/{pid:04d}/{p.name}", pid, cam, int(cam in SYSU_IR_CAMERAS))
                     for cam in SYSU_CAMERAS for p in _images_in(root / f"cam{cam}" / f"{pid:04d}")]
            if not found:
                raise LayoutError(f"{exp / source}: id {pid} has no images (looked in {root}/cam1..cam6/{pid:04d}/)")
            records += found
        splits[split] = _relabel(records, ids) if split == "train" else records
    return splits


# ----------------------------------------------------------------------------------------------------
# RegDB


def _read_index(root: Path, index: Path) -> list[tuple[str, int, int]]:
    """Lines '<relative path> <label>' -> (path, label, line number), checking every file exists."""
    _require(index, "an index file of '<relative path> <label>' lines")
    entries = []
    for n, line in enumerate(index.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        if len(fields) != 2 or not fields[1].strip().lstrip("-").isdigit():
            raise LayoutError(f"{index}:{n}: {line!r}; expected exactly '<relative path> <integer label>'")
        rel = fields[0].replace("\\", "/")
        if not (root / rel).is_file():
            raise LayoutError(f"{index}:{n}: image {root / rel} does not exist")
        entries.append((rel, int(fields[1]), n))
    if not entries:
        raise LayoutError(f"{index}: no entries")
    first = {}
    for rel, _, n in entries:
        if rel in first:
            raise LayoutError(f"{index}:{n}: {rel} is already listed on line {first[rel]}")
        first[rel] = n
    return entries


def read_regdb(root: str | Path, split: int = 1) -> dict[str, list[Record]]:
    """One of the 10 official train/test splits; person id = the image's folder name."""
    root = Path(root)
    if split not in range(1, 11):
        raise ValueError(f"RegDB split must be 1..10, got {split}")
    splits = {}
    for part in ("train", "test"):
        records = []
        for modality, kind, camera in ((0, "visible", REGDB_VISIBLE_CAMERA), (1, "thermal", REGDB_THERMAL_CAMERA)):
            index = root / "idx" / f"{part}_{kind}_{split}.txt"
            for rel, _, n in _read_index(root, index):  # the label field is per-file; the folder is the id
                folder = Path(rel).parent.name
                if not folder.isdigit():
                    raise LayoutError(f"{index}:{n}: {rel}: the parent folder must be the integer person id")
                records.append(Record(rel, int(folder), camera, modality))
        splits[part] = _relabel(records, [r.person_id for r in records]) if part == "train" else records
    overlap = sorted({r.person_id for r in splits["train"]} & {r.person_id for r in splits["test"]})
    if overlap:
        raise LayoutError(f"{root / 'idx'}: split {split} has ids {overlap[:10]} in both its train and test index files")
    return splits


# ----------------------------------------------------------------------------------------------------
# LLCM

_CAM_DIR = re.compile(r"^cam(\d+)$")
_CAM_NAME = re.compile(r"_c(\d+)_")


def _llcm_camera(rel: str, where: str) -> int:
    # Read the camera from the path *relative to the root*, so a root containing "cam" cannot fool it.
    parts = rel.split("/")
    for part in parts[:-1]:
        m = _CAM_DIR.match(part)
        if m:
            return int(m.group(1))
    m = _CAM_NAME.search(parts[-1])
    if m:
        return int(m.group(1))
    raise LayoutError(f"{where}: cannot tell the camera of {rel!r} (expected a 'cam<N>' folder or '_c<NN>_' in the name)")


def read_llcm(root: str | Path) -> dict[str, list[Record]]:
    """train from idx/train_{vis,nir}.txt (label field = person id), test from idx/test_id.txt and the
    test_vis / test_nir camera folders."""
    root = Path(root)
    train = []
    for modality, kind in ((0, "vis"), (1, "nir")):
        index = root / "idx" / f"train_{kind}.txt"
        for rel, pid, n in _read_index(root, index):
            train.append(Record(rel, pid, _llcm_camera(rel, f"{index}:{n}"), modality))
    test_ids = read_id_file(root / "idx" / "test_id.txt")
    test = []
    for modality, kind in ((0, "vis"), (1, "nir")):
        top = _require(root / f"test_{kind}", f"LLCM test folder test_{kind}/cam<N>/<pid:04d>/")
        cams = sorted((int(m.group(1)), d) for d in top.iterdir() if d.is_dir() and (m := _CAM_DIR.match(d.name)))
        if not cams:
            raise LayoutError(f"{top}: no cam<N> folders")
        for pid in test_ids:
            for cam, d in cams:
                test += [Record(f"test_{kind}/{d.name}/{pid:04d}/{p.name}", pid, cam, modality)
                         for p in _images_in(d / f"{pid:04d}")]
    for pid in test_ids:
        if not any(r.person_id == pid for r in test):
            raise LayoutError(f"{root / 'idx' / 'test_id.txt'}: id {pid} has no images under test_vis/ or test_nir/")
    return {"train": _relabel(train, [r.person_id for r in train]), "test": test}


# ----------------------------------------------------------------------------------------------------

def verify_images(root: str | Path, records: list[Record], progress: bool = True) -> None:
    """Decode every image once; raise naming each unreadable / corrupt file."""
    from PIL import Image
    from tqdm.auto import tqdm

    root = Path(root)
    bad = []
    for r in tqdm(records, desc="checking images", unit="img", disable=not progress, leave=False):
        try:
            with Image.open(root / r.path) as im:
                im.load()
        except Exception as e:  # PIL raises several types for broken files
            bad.append(f"{root / r.path} ({type(e).__name__}: {e})")
    if bad:
        raise LayoutError(f"{len(bad)} unreadable or corrupt image(s):\n  " + "\n  ".join(bad[:20])
                          + ("\n  ..." if len(bad) > 20 else ""))
