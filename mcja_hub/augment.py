"""Modality Alignment Augmentation (MAA) and the train / test pipelines of SPEC §1.

Every op works on uint8 images, single ``(3, H, W)`` or batched ``(B, 3, H, W)``, on any device, with
independent randomness per sample drawn from an optional ``torch.Generator`` (its device decides where
the few random numbers are drawn, so results do not depend on the image device). The three MAA ops
apply unconditionally; ``ModalityAlignmentAugment`` decides which one and how often.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------------------------------
# Randomness and shape helpers


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=dev).to(device)


def _randint(high: torch.Tensor | int, shape: tuple[int, ...], generator, device) -> torch.Tensor:
    """Uniform integers in [0, high) with a per-element ``high`` (as torch.randint for each)."""
    return (_rand(shape, generator, device) * high).floor().long()


def _batched(fn):
    """Let a batched op accept a single (3, H, W) image too."""

    def wrapper(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if x.ndim == 3:
            return fn(x[None], *args, **kwargs)[0]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{fn.__name__} expects (3, H, W) or (B, 3, H, W) images, got shape {tuple(x.shape)}")
        return fn(x, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _channel(x: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
    """``x[i, channel[i]]`` for every image i of a (n, 3, H, W) batch, as a new (n, H, W) tensor.

    index_select copies whole planes; advanced indexing ``x[arange(n), channel]`` goes element by
    element on the CPU (8x slower, measured)."""
    return x.flatten(0, 1).index_select(0, torch.arange(len(x), device=x.device) * 3 + channel)


def _check_uint8(x: torch.Tensor, name: str) -> None:
    if x.dtype != torch.uint8:
        raise TypeError(f"{name} expects uint8 images (0..255), got {x.dtype}")


_TILE_PIXELS = 1 << 15  # ~32k: a tile's float temporaries (~130 KB each) all stay in L2 (measured best)


def _per_image(fn, x: torch.Tensor, per_sample: tuple[torch.Tensor, ...], index: torch.Tensor | None = None,
               pixelwise: bool = True, tiles: bool | None = None) -> torch.Tensor:
    """``fn(x[index], *per_sample)`` cast to x's dtype (all of x when ``index`` is None).

    With ``tiles`` (default: on the CPU) a tile of ~32k pixels at a time (a band of rows of one image for
    larger ones when ``fn`` is ``pixelwise``), taken from x as a view: the float temporaries of a tile stay
    in cache instead of streaming the batch through memory once per elementwise op (hue on 11 images of
    384x192: 10.3 ms in whole-image tiles, 7.4 ms in bands of 128 rows), and the selected images are never
    gathered. Otherwise (GPU) all at once.
    """
    if not (x.device.type == "cpu" if tiles is None else tiles):
        rows = x if index is None else x.index_select(0, index)  # not x[index]: see _channel
        return fn(rows, *per_sample).to(x.dtype).contiguous()
    idx = list(range(len(x))) if index is None else index.tolist()
    height, width = x.shape[-2:]
    step = max(1, _TILE_PIXELS // (height * width))
    bands = math.ceil(height * width / _TILE_PIXELS) if pixelwise and step == 1 else 1
    band = math.ceil(height / bands)
    out = torch.empty((len(idx), *x.shape[1:]), dtype=x.dtype, device=x.device)
    for i in range(0, len(idx), step):
        j = idx[i:i + step]  # consecutive images are a view; only small images, many to a tile, get gathered
        consecutive = j[-1] - j[0] == len(j) - 1
        tile = x[j[0]:j[-1] + 1] if consecutive else x.index_select(0, torch.tensor(j, device=x.device))
        params = [a[i:i + step] for a in per_sample]
        for r in range(0, height, band):  # the assignment casts (truncating, as .to does)
            out[i:i + step, :, r:r + band] = fn(tile[:, :, r:r + band], *params)
    return out


class _OutputBuffers:
    """TrainAugment's float32 outputs on the CPU, recycled like the CUDA caching allocator does on a GPU.

    A fresh 113 MB batch (128 x 384 x 192) costs ~28k page faults, each a page the kernel zeroes first:
    writing it took 39 ms vs 12 ms for memory used before. So the last ``keep`` buffers are kept (as
    numpy arrays: numpy asks Linux for transparent huge pages on large arrays, which makes the first
    use cheap too) and one is handed out again only once no tensor made from it is alive anywhere
    (views, autograd graphs, ``.numpy()`` exports included): a weak reference to the storage of the
    tensor handed out tells. The memory itself is owned by the numpy array, so it stays valid for
    anyone still holding a tensor of a buffer that was dropped from the pool.
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep, self.slots = keep, []  # [numpy array, StorageWeakRef of the tensor last made from it]
        self.lock = threading.Lock()  # two threads must not pick the same free buffer

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        with self.lock:
            slot = next((s for s in self.slots if s[0].shape == tuple(shape) and s[1].expired()), None)
            if slot is None:
                slot = [np.empty(shape, dtype=np.float32), None]
                self.slots = (self.slots + [slot])[-self.keep:]
            out = torch.from_numpy(slot[0])
            slot[1] = StorageWeakRef(out.untyped_storage())
        return out

    # a copied or unpickled module starts with an empty pool of its own
    def __deepcopy__(self, memo):
        return _OutputBuffers(self.keep)

    def __getstate__(self):
        return {"keep": self.keep}

    def __setstate__(self, state):
        self.__init__(state["keep"])


def sample_boxes(n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu", attempts: int = 10):
    """RandomErasing's box sampler, vectorised: ``n`` boxes ``(top, left, h, w, found)``.

    Per attempt: area fraction ~ U(scale), aspect = exp(U(log ratio)), h = round(sqrt(area*aspect)),
    w = round(sqrt(area/aspect)); accepted when h < height and w < width, then the corner is uniform
    so the box fits. The first accepted attempt wins; ``found`` is False when all attempts failed
    (the caller leaves those images alone, as torchvision does).
    """
    device = torch.device(device)
    area = height * width
    s = scale[0] + (scale[1] - scale[0]) * _rand((n, attempts), generator, device)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _rand((n, attempts), generator, device))
    # float64: torch.round (half to even) then agrees with Python's round() used by torchvision
    h = torch.round(torch.sqrt(area * s.double() * aspect.double())).long()
    w = torch.round(torch.sqrt(area * s.double() / aspect.double())).long()
    ok = (h < height) & (w < width)
    found = ok.any(dim=1)
    pick = ok.long().argmax(dim=1)  # first accepted attempt (0 when none, masked by ``found``)
    h = h.gather(1, pick[:, None])[:, 0]
    w = w.gather(1, pick[:, None])[:, 0]
    top = _randint(height - h + 1, (n,), generator, device)
    left = _randint(width - w + 1, (n,), generator, device)
    return top, left, h, w, found


# ----------------------------------------------------------------------------------------------------
# The three MAA ops (SPEC §1.4-1.6)


# Each op = its per-image parameters drawn from the generator (batched) + a function applying them to a
# batch. The public ops do both; ModalityAlignmentAugment draws for the images that chose an op and
# applies it to just those (_per_image).


@_batched
def weighted_grayscale(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gray = w·(R, G, B) with w = three U(0,1) draws normalised to sum 1; truncated to uint8, 3 channels."""
    _check_uint8(x, "weighted_grayscale")
    return _per_image(_weighted_gray, x, _gray_params(len(x), generator, x.device))


def _gray_params(n: int, generator, device) -> tuple[torch.Tensor]:
    u = _rand((n, 3), generator, device)
    return (u / u.sum(dim=1, keepdim=True),)


def _weighted_gray(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    gray = x.float().mul_(w[:, :, None, None]).sum(dim=1, keepdim=True)
    return gray.clamp_(0, 255).expand_as(x)  # float; callers cast (truncating)


@_batched
def cross_channel_cutmix(x: torch.Tensor, generator: torch.Generator | None = None, faithful: bool = False,
                         scale: tuple[float, float] = (0.02, 0.33),
                         ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """One channel everywhere, another channel's values inside a random box; gray, 3 channels.

    ``faithful=True`` reproduces the released code, which takes PIL's (width, height) as (height,
    width): the box is sampled for a W x H image but pasted into the H x W array, so on a tall
    pedestrian crop its rows stay in the top W rows and columns past W are clipped (about a quarter
    of the boxes end up empty at 384x192). The default samples the box for the real image shape.
    """
    _check_uint8(x, "cross_channel_cutmix")
    params = _cutmix_params(x.shape, generator, x.device, faithful, scale, ratio)
    return _per_image(_paste_box, x, params, pixelwise=False)


def _cutmix_params(shape, generator, device, faithful: bool, scale, ratio) -> tuple[torch.Tensor, ...]:
    """(background channel, foreground channel, top, left, h, w, found) per image."""
    n, _, height, width = shape
    first = _randint(3, (n,), generator, device)  # an ordered pair of distinct channels, uniform over 6
    second = (first + 1 + _randint(2, (n,), generator, device)) % 3
    bh, bw = (width, height) if faithful else (height, width)
    return (first, second, *sample_boxes(n, bh, bw, scale, ratio, generator, device))


def _paste_box(x: torch.Tensor, background, foreground, *boxes: torch.Tensor) -> torch.Tensor:
    out = _channel(x, background)
    for img, fg, (top, left, h, w, found) in zip(out, _channel(x, foreground), zip(*(t.tolist() for t in boxes))):
        if found:  # slicing clips a box that reaches past the image (the faithful quirk)
            img[top:top + h, left:left + w] = fg[top:top + h, left:left + w]
    return out[:, None].expand_as(x)


def blend(degenerate: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, image, alpha)`` on uint8 tensors: d + a(x - d), truncated.

    ``degenerate`` may broadcast (e.g. one channel for all three). For alpha in [0, 1] the result lies
    between two values in [0, 255]; other alphas extrapolate and are clipped, as PIL does.
    """
    return _blend(degenerate, image, alpha).clamp_(0, 255).to(torch.uint8)


def _blend(degenerate: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    a = alpha.reshape(-1, *([1] * (image.ndim - 1))).float()
    d = degenerate.float()
    return (image.float() - d).mul_(a).add_(d)


@_batched
def spectrum_jitter(x: torch.Tensor, generator: torch.Generator | None = None,
                    factor: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Blend between one random channel replicated (alpha=0) and the original colours (alpha=1)."""
    _check_uint8(x, "spectrum_jitter")
    return _per_image(_blend_with_channel, x, _sj_params(len(x), generator, x.device, factor))


def _sj_params(n: int, generator, device, factor) -> tuple[torch.Tensor, torch.Tensor]:
    channel = _randint(3, (n,), generator, device)
    return channel, factor[0] + (factor[1] - factor[0]) * _rand((n,), generator, device)


def _blend_with_channel(x: torch.Tensor, channel: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    single = _channel(x, channel)[:, None]  # (n, 1, H, W), broadcast in blend
    return _blend(single, x, alpha).clamp_(0, 255)  # float; callers cast (truncating)


@_batched
def hue_jitter(x: torch.Tensor, generator: torch.Generator | None = None, hue: float = 0.2) -> torch.Tensor:
    """ColorJitter(hue=h): per-sample HSV hue shift ~ U(-h, h) of the colour circle."""
    _check_uint8(x, "hue_jitter")
    return _per_image(_rotate_hue, x, _hue_params(len(x), generator, x.device, hue))


def _hue_params(n: int, generator, device, hue: float) -> tuple[torch.Tensor]:
    return ((_rand((n,), generator, device) * 2 - 1) * hue,)


@_batched
def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of image i by ``shift[i]`` (fraction of the circle), vectorised.

    A hue rotation keeps value V (max) and chroma C (max - min) of every pixel and moves its hue h
    (in turns) to h' = h + shift; each channel is then V + C - 6C * clamp(|h' - centre| wrapped to the
    nearest turn, 1/6, 1/3), centres R 0, G 1/3, B 2/3 (the HSV hexcone). Matches torchvision's
    adjust_hue to +-1 level.
    """
    shift = torch.as_tensor(shift, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
    return _per_image(_rotate_hue, x, (shift,))


def _rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    # Only add/mul/min/max/abs/clamp/round, mostly in place: on the CPU these vectorise, while
    # comparisons, bool masks, where and remainder run element by element (10-30x slower per element),
    # and every fresh temporary costs about as much as the op (measured on 384x192 tiles).
    xf = x.float()
    r, g, b = xf.unbind(1)
    not_r = torch.maximum(g, b)
    v = torch.maximum(r, not_r)
    chroma = torch.minimum(g, b)
    chroma = torch.minimum(chroma, r, out=chroma).neg_().add_(v)
    # which channel is the max, as exact 0/1 floats from integer differences (ties: red, then green)
    not_r.sub_(r).clamp_(0, 1)
    is_b = (b - g).clamp_(0, 1).mul_(not_r)
    is_g = not_r.sub_(is_b)
    # hue * chroma in sectors: red max -> g - b (in [-C, C]), green -> 2C + b - r, blue -> 4C + r - g
    num = g - b
    t = (b - r).add_(chroma, alpha=2).sub_(num)
    num.addcmul_(is_g, t)
    t = torch.sub(r, g, out=t).add_(chroma, alpha=4).sub_(g).add_(b)
    h = num.addcmul_(is_b, t).div_(chroma.clamp(min=1).mul_(6))  # in turns
    # channel c (adjust_hue's docstring); + 0.5 then truncation to uint8 rounds
    centre = torch.tensor([0.0, 1 / 3, 2 / 3], device=x.device)
    y = torch.add(h[:, None], (shift[:, None] - centre)[:, :, None, None], out=xf)
    wrapped = torch.round(y)
    y.sub_(wrapped).abs_().clamp_(1 / 6, 1 / 3)
    base = v.add_(chroma).add_(0.5)[:, None]
    return torch.addcmul(base, chroma.mul_(6)[:, None], y, value=-1, out=wrapped)  # float; callers cast


@_batched
def channel_select(x: torch.Tensor, channel: int) -> torch.Tensor:
    """One colour channel replicated to 3 (MSER's R / G / B test views)."""
    return x[:, channel:channel + 1].expand_as(x).contiguous()


# ----------------------------------------------------------------------------------------------------
# Pipelines


@dataclass
class AugmentConfig:
    """Train / test pipeline constants; defaults are the released MCJA recipe (SPEC §1)."""

    size: tuple[int, int] = (384, 192)  # (height, width); images are resized to this first
    # MAA: one of {hue, WG, CC, SJ} chosen uniformly, then applied with probability maa_p
    maa_p: float = 0.5
    hue: float = 0.2
    color_jitter: bool = True  # a disabled op stays in the 4-way choice as identity
    weighted_grayscale: bool = True
    cross_channel_cutmix: bool = True
    spectrum_jitter: bool = True
    cutmix_faithful: bool = False  # True: the released code's swapped box (SPEC §1.5)
    cutmix_scale: tuple[float, float] = (0.02, 0.33)
    cutmix_ratio: tuple[float, float] = (0.3, 3.3)
    sj_factor: tuple[float, float] = (0.0, 1.0)
    # geometry
    flip_p: float = 0.5
    pad: int = 10
    pad_fill: int = 127
    # tensor
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.02, 0.30)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    erase_value: float = 0.0  # in normalised units: 0 = the dataset mean colour

    def __post_init__(self) -> None:
        for name in ("maa_p", "flip_p", "erase_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.pad_fill <= 255 or self.pad < 0:
            raise ValueError(f"AugmentConfig.pad/pad_fill must be >= 0 / in 0..255, got {self.pad}/{self.pad_fill}")


MAA_OPS = ("hue", "weighted_grayscale", "cross_channel_cutmix", "spectrum_jitter")


class ModalityAlignmentAugment(nn.Module):
    """One of {hue jitter, WG, CC, SJ} uniformly per image, applied with probability ``p`` (SPEC §1.1).

    Disabled ops keep their slot as identity, so disabling one does not raise the others' rate.
    Each op is computed only on the images that drew it.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = config or AugmentConfig()

    def choose(self, n: int, generator=None, device="cpu") -> torch.Tensor:
        """Per image: the index into MAA_OPS that will be applied, or -1 for none."""
        op = _randint(4, (n,), generator, device)
        apply = _rand((n,), generator, device) < self.config.maa_p
        enabled = torch.tensor([self.config.color_jitter, self.config.weighted_grayscale,
                                self.config.cross_channel_cutmix, self.config.spectrum_jitter], device=device)
        return torch.where(apply & enabled[op], op, -1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim == 3:
            return self.forward(x[None], generator)[0]
        out = x.clone()
        for sel, images in self.apply_ops(x, self.choose(x.shape[0], generator, x.device), generator):
            out.index_copy_(0, sel, images)
        return out

    def apply_ops(self, x: torch.Tensor, choice: torch.Tensor,
                  generator=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Apply op ``choice[i]`` (index into MAA_OPS, -1 = none) to image i: per op that was drawn,
        ``(indices, their augmented images)``; ``x`` is not modified."""
        _check_uint8(x, "ModalityAlignmentAugment")
        c, dev = self.config, x.device
        ops = ((_rotate_hue, lambda n: _hue_params(n, generator, dev, c.hue)),
               (_weighted_gray, lambda n: _gray_params(n, generator, dev)),
               (_paste_box, lambda n: _cutmix_params((n, *x.shape[1:]), generator, dev, c.cutmix_faithful,
                                                     c.cutmix_scale, c.cutmix_ratio)),
               (_blend_with_channel, lambda n: _sj_params(n, generator, dev, c.sj_factor)))
        done = []
        for k, (fn, params) in enumerate(ops):
            sel = (choice == k).nonzero()[:, 0]
            if len(sel):
                done.append((sel, _per_image(fn, x, params(len(sel)), sel, pixelwise=fn is not _paste_box)))
        return done


class TrainAugment(nn.Module):
    """The whole training pipeline after resizing, batched on any device (SPEC §1.1-1.2).

    uint8 (B, 3, H, W) at ``config.size`` + modality (B,) with 0 = visible, 1 = infrared ->
    MAA on visible images only -> horizontal flip -> pad (fill 127) + random crop back to (H, W) ->
    float, normalise -> random erasing. Returns float32 (B, 3, H, W).
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or AugmentConfig()
        self.maa = ModalityAlignmentAugment(c)
        self._outputs = _OutputBuffers()
        std = torch.tensor(c.std).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("shift", -torch.tensor(c.mean).view(1, 3, 1, 1) / std, persistent=False)

    def forward(self, x: torch.Tensor, modality: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        _check_uint8(x, "TrainAugment")
        if x.ndim != 4 or tuple(x.shape[-2:]) != tuple(c.size):
            raise ValueError(f"TrainAugment expects (B, 3, {c.size[0]}, {c.size[1]}) uint8 images, got {tuple(x.shape)}")
        n, _, height, width = x.shape
        modality = torch.as_tensor(modality, device=x.device).reshape(-1)
        if modality.shape[0] != n:
            raise ValueError(f"TrainAugment: {n} images but {modality.shape[0]} modality labels")
        choice = self.maa.choose(n, generator, x.device).masked_fill_(modality != 0, -1)  # no MAA on IR
        source = list(x.unbind(0))  # image i's source for the crop: x[i] or its MAA output
        for sel, images in self.maa.apply_ops(x, choice, generator):
            for j, i in enumerate(sel.tolist()):
                source[i] = images[j]
        flip = (_rand((n,), generator, x.device) < c.flip_p).tolist()
        dy = _randint(2 * c.pad + 1, (n,), generator, x.device).tolist()
        dx = _randint(2 * c.pad + 1, (n,), generator, x.device).tolist()
        erase = (_rand((n,), generator, x.device) < c.erase_p).tolist()
        top, left, bh, bw, found = (t.tolist() for t in
                                    sample_boxes(n, height, width, c.erase_scale, c.erase_ratio, generator, x.device))
        # flip + RandomCrop(padding=pad, fill=pad_fill) = a translation by (dy - pad, dx - pad) on a canvas
        # of the fill value, built per image straight in its float32 output slot and normalised there while
        # it is in cache (one pass over the float output instead of three batch-wide ones).
        scale, shift = self.scale[0].to(x.device), self.shift[0].to(x.device)
        out = (self._outputs.empty(x.shape) if x.device.type == "cpu"
               else torch.empty(x.shape, dtype=torch.float32, device=x.device))
        for i in range(n):
            img = source[i].flip(-1) if flip[i] else source[i]
            sy, sx = dy[i] - c.pad, dx[i] - c.pad  # canvas[r, q] = img[r + sy, q + sx] where that exists
            y0, y1 = max(sy, 0), min(height + sy, height)
            x0, x1 = max(sx, 0), min(width + sx, width)
            o = out[i]
            o[:, y0 - sy:y1 - sy, x0 - sx:x1 - sx] = img[:, y0:y1, x0:x1]
            if y0 - sy > 0:  # the borders (no empty slices: each costs as much as a small op)
                o[:, :y0 - sy].fill_(c.pad_fill)
            if y1 - sy < height:
                o[:, y1 - sy:].fill_(c.pad_fill)
            if x0 - sx > 0:
                o[:, :, :x0 - sx].fill_(c.pad_fill)
            if x1 - sx < width:
                o[:, :, x1 - sx:].fill_(c.pad_fill)
            o.mul_(scale).add_(shift)  # (x/255 - mean)/std
            if erase[i] and found[i]:
                o[:, top[i]:top[i] + bh[i], left[i]:left[i] + bw[i]] = c.erase_value
        return out


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 image(s) to (height, width), no aspect preservation."""
    return TF.resize(x, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def eval_transform(image, size: tuple[int, int] = (384, 192), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   channel: int | None = None) -> torch.Tensor:
    """Test-time view of one image (PIL or uint8 tensor): resize -> [single channel] -> normalise.

    ``channel`` 0/1/2 gives MSER's R/G/B views of a visible image; leave it None for infrared images
    (SPEC §1.7: the spectral modes never touch IR). No flip test-time augmentation.
    """
    x = TF.pil_to_tensor(image.convert("RGB")) if not isinstance(image, torch.Tensor) else image
    _check_uint8(x, "eval_transform")
    x = resize(x, size)
    if channel is not None:
        x = channel_select(x, channel)
    return TF.normalize(x.float() / 255, list(mean), list(std))


def train_transform(image, modality: int, config: AugmentConfig | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image training view (for DataLoader workers): resize, then the same ops as ``TrainAugment``."""
    augment = TrainAugment(config)
    x = TF.pil_to_tensor(image.convert("RGB")) if not isinstance(image, torch.Tensor) else image
    return augment(resize(x, augment.config.size)[None], torch.tensor([modality]), generator)[0]
