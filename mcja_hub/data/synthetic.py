"""A procedural visible-infrared pedestrian generator that writes the official dataset layouts.

Nobody can ship SYSU-MM01, RegDB or LLCM (they need signed agreements), so the demo and the tests use
this: every identity has persistent attributes (body proportions, clothing colours, patterns,
accessories and the *thermal* properties of each material). Visible cameras render colour under
their own illumination, background, scale and blur; infrared cameras render heat: skin is warm,
garments emit according to their material, never their hue, replicated to 3 channels. So colour is
useless across modalities while shape, pattern and luminance structure carry over (infrared brightness
mixes each material's visible luminance with its heat), as in the real problem. The files are written
in the same names and formats as the real releases, so the real loading code runs on them.

``generate_synthetic`` (in ``catalog``, next to the dataset table) picks the writer of a dataset and
leaves a marker file saying the data is synthetic.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .layouts import SYSU_CAMERAS, SYSU_IR_CAMERAS, SYSU_OUTDOOR_CAMERAS

# part labels of the rendered label map
BG, LEG, SHOE, TOP, ARM, HEAD, HAIR, HAT, BAG, PACK, PATTERN = range(11)


@dataclass
class Identity:
    pid: int
    height: float  # fraction of the frame
    width: float  # shoulder width, fraction of the frame width
    head: float  # head radius, fraction of the body height
    torso: float  # torso length, fraction of the body height
    colours: np.ndarray  # (11, 3) RGB in [0, 1] per part
    heat: np.ndarray  # (11,) infrared intensity per part in [0, 1]
    pattern: int  # 0 solid, 1 horizontal stripes, 2 vertical stripes, 3 checks, 4 chest block
    period: float  # stripe period, fraction of the body height
    hat: bool
    bag: int  # 0 none, -1 left, 1 right
    backpack: bool


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def make_identity(pid: int, seed: int) -> Identity:
    rng = np.random.default_rng([seed, pid, 0])

    def colour(s=(0.25, 1.0), v=(0.2, 1.0)):
        return _hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))

    colours = np.zeros((11, 3))
    colours[LEG], colours[TOP], colours[PATTERN] = colour(), colour(), colour()
    colours[SHOE] = colour(s=(0, 0.5), v=(0.05, 0.6))
    colours[ARM] = colours[TOP] if rng.random() < 0.7 else _hsv_to_rgb(0.07, rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.9))
    skin = _hsv_to_rgb(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.95))
    colours[HEAD] = skin
    colours[HAIR] = colour(s=(0.1, 0.7), v=(0.05, 0.5))
    colours[HAT], colours[BAG], colours[PACK] = colour(), colour(), colour()
    # Heat is drawn independently of every colour: a garment's infrared brightness depends on its
    # material (emissivity, thickness), skin is warm, accessories are cold.
    heat = np.zeros(11)
    heat[HEAD] = rng.uniform(0.8, 1.0)
    heat[ARM] = heat[HEAD] * 0.95 if not np.allclose(colours[ARM], colours[TOP]) else rng.uniform(0.3, 0.8)
    heat[LEG], heat[TOP], heat[PATTERN] = rng.uniform(0.25, 0.8), rng.uniform(0.25, 0.8), rng.uniform(0.2, 0.9)
    heat[SHOE], heat[HAIR] = rng.uniform(0.15, 0.4), rng.uniform(0.4, 0.65)
    heat[HAT], heat[BAG], heat[PACK] = rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.35), rng.uniform(0.05, 0.35)
    return Identity(
        pid=pid, height=rng.uniform(0.8, 0.94), width=rng.uniform(0.42, 0.62), head=rng.uniform(0.08, 0.1),
        torso=rng.uniform(0.27, 0.35), colours=colours, heat=heat, pattern=int(rng.integers(0, 5)),
        period=rng.uniform(0.03, 0.08), hat=bool(rng.random() < 0.2), bag=int(rng.choice([0, 0, -1, 1])),
        backpack=bool(rng.random() < 0.3),
    )


@dataclass
class Camera:
    infrared: bool
    gain: float
    tint: np.ndarray  # (3,) per-channel illumination
    background: np.ndarray  # (3,) base colour, or (1,) temperature for infrared
    texture: float  # background clutter amplitude
    scale: float
    blur: float
    noise: float


def make_camera(index: int, infrared: bool, outdoor: bool, seed: int) -> Camera:
    rng = np.random.default_rng([seed, 10_000 + index, 1])
    if infrared:
        base = np.array([rng.uniform(0.05, 0.3) if outdoor else rng.uniform(0.2, 0.45)])
        return Camera(True, rng.uniform(0.8, 1.15), np.ones(3), base, rng.uniform(0.03, 0.1),
                      rng.uniform(0.82, 1.0), rng.uniform(0.6, 1.4), rng.uniform(0.02, 0.05))
    hue = rng.uniform(0.2, 0.45) if outdoor else rng.uniform(0.05, 0.15)
    base = _hsv_to_rgb(hue, rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.7))
    return Camera(False, rng.uniform(0.65, 1.25) * (1.1 if outdoor else 0.9), rng.uniform(0.9, 1.1, 3), base,
                  rng.uniform(0.05, 0.2), rng.uniform(0.82, 1.0), rng.uniform(0.0, 0.9), rng.uniform(0.01, 0.03))


def render(ident: Identity, cam: Camera, rng: np.random.Generator, height: int = 128, width: int = 64) -> np.ndarray:
    """One (height, width, 3) uint8 image of ``ident`` seen by ``cam``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    aspect = height / width
    # pose and framing jitter per image
    body = ident.height * cam.scale * rng.uniform(0.95, 1.05)
    top = (1 - body) * rng.uniform(0.3, 0.7)
    cx = 0.5 + rng.uniform(-0.08, 0.08)
    facing = rng.choice([-1, 1])
    spread = rng.uniform(0.0, 0.12)
    shoulder = ident.width * cam.scale / 2
    head_r = ident.head * body
    neck = top + 2 * head_r
    hip = neck + ident.torso * body
    foot = top + body
    by = (yy - top) / body  # 0 at the top of the head, 1 at the feet

    label = np.zeros((height, width), np.int8)
    # legs (two slightly spread bars), shoes at the bottom
    for side in (-1, 1):
        lx = cx + side * (shoulder * 0.35 + spread * (yy - hip) / max(foot - hip, 1e-3))
        leg = (yy >= hip) & (yy <= foot) & (np.abs(xx - lx) < shoulder * 0.3)
        label[leg] = LEG
        label[leg & (yy > foot - 0.035)] = SHOE
    if ident.backpack:
        pack = (yy > neck + 0.02) & (yy < hip - 0.02) & (np.abs(xx - cx - facing * shoulder * 0.6) < shoulder * 0.55)
        label[pack] = PACK
    # torso: a trapezoid narrowing to the hips; arms along its sides
    t = np.clip((yy - neck) / max(hip - neck, 1e-3), 0, 1)
    half = shoulder * (1 - 0.2 * t)
    torso = (yy >= neck) & (yy <= hip) & (np.abs(xx - cx) <= half)
    label[torso] = TOP
    swing = rng.uniform(-0.04, 0.04)
    for side in (-1, 1):
        ax = cx + side * (shoulder + 0.07) + side * swing * (yy - neck) / max(hip - neck, 1e-3)
        arm = (yy >= neck + 0.01) & (yy <= hip + 0.06) & (np.abs(xx - ax) < 0.07)
        label[arm & (label == BG)] = ARM
    # clothing pattern on the torso
    phase = (by / ident.period) % 1.0
    pattern = {0: np.zeros_like(torso), 1: phase < 0.5, 2: ((xx * aspect / ident.period / body) % 1.0) < 0.5,
               3: (phase < 0.5) ^ (((xx * aspect / ident.period / body) % 1.0) < 0.5),
               4: (np.abs(xx - cx) < shoulder * 0.45) & (yy > neck + 0.03) & (yy < neck + 0.13)}[ident.pattern]
    label[torso & pattern] = PATTERN
    # head (an ellipse), hair on its upper part, optional hat
    head = ((xx - cx) * aspect) ** 2 + (yy - top - head_r) ** 2 <= head_r ** 2
    label[head] = HEAD
    label[head & (yy < top + head_r * 0.8)] = HAIR
    if ident.hat:
        label[(np.abs(xx - cx) * aspect < head_r * 1.25) & (yy >= top - 0.01) & (yy < top + head_r * 0.6)] = HAT
    if ident.bag:
        bx = cx + facing * ident.bag * (shoulder + 0.14)
        label[(np.abs(xx - bx) < 0.09) & (yy > hip - 0.06) & (yy < hip + 0.1)] = BAG

    clutter = (np.sin(xx * rng.uniform(4, 12) + rng.uniform(0, 6)) * np.sin(yy * rng.uniform(3, 9) + rng.uniform(0, 6)))
    shade = 1.0 - 0.25 * (by - 0.5)  # light from above
    if cam.infrared:
        # Near-infrared brightness follows a material's reflectance, which correlates with its visible
        # luminance but not with its hue, plus the material's own emission (skin is bright): a mix.
        luminance = ident.colours @ np.array([0.299, 0.587, 0.114])
        heat = (0.55 * luminance + 0.45 * ident.heat)[label]
        bg = cam.background[0] + cam.texture * clutter
        img = np.where(label == BG, bg, heat * cam.gain * rng.uniform(0.92, 1.08))
        img = img + rng.normal(0, cam.noise, img.shape)
        img = np.repeat(img[..., None], 3, axis=2)
    else:
        rgb = ident.colours[label]
        bg = cam.background[None, None, :] * (1 + cam.texture * clutter[..., None])
        light = cam.gain * cam.tint[None, None, :] * rng.uniform(0.9, 1.1)
        img = np.where((label == BG)[..., None], bg, rgb * shade[..., None] * light)
        img = img + rng.normal(0, cam.noise, img.shape)
    out = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    if cam.blur > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(cam.blur * height / 128))
    return np.asarray(out)


# ----------------------------------------------------------------------------------------------------
# Layout writers


def _split_ids(pids: list[int], fractions: tuple[float, ...], rng) -> list[list[int]]:
    """Shuffle and cut ``pids`` by ``fractions`` (each part >= 1 id); parts are returned sorted."""
    order = list(rng.permutation(pids))
    n = len(order)
    counts = [max(1, int(round(f * n))) for f in fractions[:-1]]
    counts.append(n - sum(counts))
    if counts[-1] < 1:
        raise ValueError(f"{n} identities are too few to split by {fractions}")
    parts, start = [], 0
    for c in counts:
        parts.append(sorted(int(p) for p in order[start:start + c]))
        start += c
    return parts


def _save(img: np.ndarray, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))




def _sysu_identity(job) -> list[tuple[int, int, int]]:
    pid, seed, out, size, per_cam = job
    ident = make_identity(pid, seed)
    rng = np.random.default_rng([seed, pid, 2])
    present = {c: rng.random() < 0.8 for c in SYSU_CAMERAS}
    present[int(rng.choice([1, 2]))] = True  # every id is seen by an indoor RGB camera (indoor search)
    present[int(rng.choice([3, 6]))] = True  # and by an IR camera (it can be a query)
    counts = []
    for c in SYSU_CAMERAS:
        if not present[c]:
            continue
        n = int(rng.integers(per_cam[0], per_cam[1] + 1))
        cam = make_camera(c, c in SYSU_IR_CAMERAS, c in SYSU_OUTDOOR_CAMERAS, seed)
        for k in range(1, n + 1):
            _save(render(ident, cam, rng, *size), Path(out) / f"cam{c}" / f"{pid:04d}" / f"{k:04d}.jpg", "JPEG")
        counts.append((c, pid, n))
    return counts


def _write_rand_perm_cam(path: Path, counts: dict[tuple[int, int], int], seed: int) -> None:
    """exp/rand_perm_cam.mat: a (6, 1) cell of (N_c, 1) cells, N_c = the last id camera c has images of (as in
    the real file: 333 for cams 1, 2, 6 and 533 for cams 3, 4, 5); entry [pid-1] is a uint8 (10, n) matrix
    whose row t is a permutation of the 1-based image numbers for trial t, (0, 0) when absent."""
    from scipy.io import savemat

    rng = np.random.default_rng([seed, 3])
    outer = np.empty((6, 1), dtype=object)
    for c in range(1, 7):
        last = max((pid for (cam, pid), n in counts.items() if cam == c and n), default=0)
        inner = np.empty((last, 1), dtype=object)
        for pid in range(1, last + 1):
            n = counts.get((c, pid), 0)
            inner[pid - 1, 0] = (np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(np.uint8)
                                 if n else np.zeros((0, 0), np.uint8))
        outer[c - 1, 0] = inner
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    savemat(buf, {"rand_perm_cam": outer})
    # savemat puts the time of day in the 116-byte text header; a fixed text keeps the file a function of the seed
    header = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: mcja_hub synthetic generator".ljust(116)
    path.write_bytes(header + buf.getvalue()[116:])


def write_sysu(out: Path, n_ids: int, seed: int, size: tuple[int, int], per_cam: tuple[int, int], workers: int) -> None:
    pids = list(range(1, n_ids + 1))
    train, val, test = _split_ids(pids, (0.6, 0.2, 0.2), np.random.default_rng([seed, 4]))
    counts: dict[tuple[int, int], int] = {}
    jobs = [(pid, seed, str(out), size, per_cam) for pid in pids]
    for result in _map(_sysu_identity, jobs, workers):
        counts.update({(c, pid): n for c, pid, n in result})
    exp = out / "exp"
    exp.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train_id", train), ("val_id", val), ("test_id", test)):
        (exp / f"{name}.txt").write_text(",".join(str(i) for i in ids) + "\n")
    (exp / "available_id.txt").write_text(",".join(str(i) for i in pids) + "\n")
    _write_rand_perm_cam(exp / "rand_perm_cam.mat", counts, seed)


def _regdb_identity(job) -> list[str]:
    pid, seed, out, size = job
    ident = make_identity(pid, seed)
    rng = np.random.default_rng([seed, pid, 2])
    gender = rng.choice(["male", "female"])
    view = rng.choice(["front", "back"])
    files = []
    for folder, ir, tag in (("Visible", False, "v"), ("Thermal", True, "t")):
        cam = make_camera(2 if not ir else 3, ir, True, seed)
        for k in range(10):
            name = f"{folder}/{pid}/{gender}_{view}_{tag}_{pid * 10 + k:05d}_{pid}.bmp"
            _save(render(ident, cam, rng, *size), Path(out) / name, "BMP")
            files.append(name)
    return files


def write_regdb(out: Path, n_ids: int, seed: int, size: tuple[int, int], per_cam: tuple[int, int], workers: int) -> None:
    """``per_cam`` is ignored: RegDB has 10 visible + 10 thermal images of every identity."""
    pids = list(range(1, n_ids + 1))
    files = dict(zip(pids, _map(_regdb_identity, [(pid, seed, str(out), size) for pid in pids], workers)))
    idx = out / "idx"
    idx.mkdir(parents=True, exist_ok=True)
    for trial in range(1, 11):
        train, test = _split_ids(pids, (0.5, 0.5), np.random.default_rng([seed, 5, trial]))
        for split, ids in (("train", train), ("test", test)):
            for modality, folder in (("visible", "Visible"), ("thermal", "Thermal")):
                lines = [f"{f} {label}" for label, pid in enumerate(ids) for f in files[pid] if f.startswith(folder)]
                (idx / f"{split}_{modality}_{trial}.txt").write_text("\n".join(lines) + "\n")


LLCM_CAMERAS = range(1, 10)


def _llcm_identity(job) -> dict[str, list[str]]:
    pid, seed, out, size, per_cam, split = job
    ident = make_identity(pid, seed)
    rng = np.random.default_rng([seed, pid, 2])
    files = {"vis": [], "nir": []}
    cams = sorted(int(c) for c in rng.choice(list(LLCM_CAMERAS), size=int(rng.integers(2, 5)), replace=False))
    for c in cams:
        outdoor = c > 4
        for modality, ir in (("vis", False), ("nir", True)):
            if ir and c == 3 and split == "test":
                continue  # the official test set has no NIR images from camera 3
            cam = make_camera(c + (20 if ir else 0), ir, outdoor, seed)
            for k in range(int(rng.integers(per_cam[0], per_cam[1] + 1))):
                name = f"{split}_{modality}/cam{c}/{pid:04d}/{pid:04d}_c{c:02d}_s{seed % 1000:03d}{k:03d}_f{k:04d}_{modality}.jpg"
                _save(render(ident, cam, rng, *size), Path(out) / name, "JPEG")
                files[modality].append(name)
    return files


def write_llcm(out: Path, n_ids: int, seed: int, size: tuple[int, int], per_cam: tuple[int, int], workers: int) -> None:
    pids = list(range(1, n_ids + 1))
    train, test = _split_ids(pids, (0.67, 0.33), np.random.default_rng([seed, 6]))
    split_of = {**{p: "train" for p in train}, **{p: "test" for p in test}}
    jobs = [(pid, seed, str(out), size, per_cam, split_of[pid]) for pid in pids]
    results = dict(zip(pids, _map(_llcm_identity, jobs, workers)))
    idx = out / "idx"
    idx.mkdir(parents=True, exist_ok=True)
    for split, ids in (("train", train), ("test", test)):
        for modality in ("vis", "nir"):
            lines = [f"{f} {pid}" for pid in ids for f in results[pid][modality]]
            (idx / f"{split}_{modality}.txt").write_text("\n".join(lines) + "\n")
    (idx / "test_id.txt").write_text(",".join(str(i) for i in test) + "\n")


def _map(fn, jobs, workers: int):
    if workers <= 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
