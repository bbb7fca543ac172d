"""Modality Alignment Augmentation (MAA) and the train / test pipelines (docs: docs/method.md §1).

Written the way timm writes ``RandomErasing`` and ``Mixup``: every random number a batch needs is drawn
at once as one tensor of uniforms on the generator's device, and applied with broadcasting, masks and
index arithmetic. There is no loop over images and no host-device synchronisation, and the number of
tensor ops per call does not depend on the batch size, so the same code is fast on the GPU users train
on, runs on the CPU, and compiles with ``torch.compile`` without graph breaks.

Layout: helpers, then the three MAA ops (each = its parameters from uniforms + a pure function on float
pixel levels), then the hue jitter, then the pipelines that combine them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_ATTEMPTS = 10  # RandomErasing's attempts per box
BOX_UNIFORMS = 2 * BOX_ATTEMPTS + 2  # per attempt an area and an aspect, then the corner


# ----------------------------------------------------------------------------------------------------
# Helpers


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U(0, 1) drawn on the generator's device (so results do not depend on where the images are)."""
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=dev).to(device)


def _uniform_int(u: torch.Tensor, high: torch.Tensor | int) -> torch.Tensor:
    """Integers uniform in [0, high) from uniforms ``u`` (``high`` may differ per element)."""
    return (u * high).floor().long()


def _per_image(t: torch.Tensor) -> torch.Tensor:
    """(n,) -> (n, 1, 1, 1): one value per image, broadcast over channels and pixels."""
    return t.view(-1, 1, 1, 1)


def _channel(x: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
    """``x[i, channel[i]]`` for every image of a (n, 3, H, W) batch, as (n, 1, H, W)."""
    return x.gather(1, _per_image(channel).expand(-1, 1, *x.shape[2:]))


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


def _check_uint8(x: torch.Tensor, name: str) -> None:
    if x.dtype != torch.uint8:
        raise TypeError(f"{name} expects uint8 images (0..255), got {x.dtype}")


def _grid(height: int, width: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates as (1, H, 1) and (1, 1, W), to broadcast against per-image boxes."""
    return (torch.arange(height, device=device).view(1, -1, 1), torch.arange(width, device=device).view(1, 1, -1))


def _boxes(u: torch.Tensor, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]):
    """RandomErasing's box sampler from ``BOX_UNIFORMS`` uniforms per row: ``(top, left, h, w, found)``.

    Per attempt: area fraction ~ U(scale), aspect = exp(U(log ratio)), h = round(sqrt(area*aspect)),
    w = round(sqrt(area/aspect)); accepted when h < height and w < width, then the corner is uniform
    so the box fits. The first accepted attempt wins; ``found`` is False when all attempts failed
    (callers leave those images alone, as torchvision does).
    """
    u_area, u_aspect, u_top, u_left = u.split([BOX_ATTEMPTS, BOX_ATTEMPTS, 1, 1], dim=1)
    s = scale[0] + (scale[1] - scale[0]) * u_area
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u_aspect)
    area = height * width
    # float64: torch.round (half to even) then agrees with Python's round() used by torchvision
    h = torch.round(torch.sqrt(area * s.double() * aspect.double())).long()
    w = torch.round(torch.sqrt(area * s.double() / aspect.double())).long()
    ok = (h < height) & (w < width)
    pick = ok.long().argmax(dim=1, keepdim=True)  # first accepted attempt (0 when none: masked by found)
    h, w = h.gather(1, pick)[:, 0], w.gather(1, pick)[:, 0]
    top = _uniform_int(u_top[:, 0], height - h + 1)
    left = _uniform_int(u_left[:, 0], width - w + 1)
    return top, left, h, w, ok.any(dim=1)


def _in_box(rows: torch.Tensor, cols: torch.Tensor, top, left, h, w, found) -> torch.Tensor:
    """(n, H, W) mask of the pixels inside image i's box, from row coordinates (n or 1, H, 1) and column
    coordinates (n or 1, 1, W). A box reaching past the image is clipped by the coordinates themselves."""
    top, left, h, w, found = (t.view(-1, 1, 1) for t in (top, left, h, w, found))
    return ((rows >= top) & (rows < top + h) & found) & ((cols >= left) & (cols < left + w))


def _put_(out: torch.Tensor, mask: torch.Tensor, value: torch.Tensor | float) -> torch.Tensor:
    """``out = where(mask, value, out)`` in place, for a mask broadcasting to ``out``. A lerp with 0/1
    weights (exact at both): on the CPU a ``where`` or ``masked_fill`` whose mask broadcasts over
    channels or pixels takes a slow broadcasting path (benchmarks/augment.py)."""
    if not isinstance(value, torch.Tensor):  # made on the device (as_tensor would copy it from the host)
        value = torch.full((), value, dtype=out.dtype, device=out.device)
    return out.lerp_(value, mask.to(out.dtype))


def sample_boxes(n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu"):
    """``n`` RandomErasing boxes ``(top, left, h, w, found)`` for a height x width image (see ``_boxes``)."""
    return _boxes(_rand((n, BOX_UNIFORMS), generator, torch.device(device)), height, width, scale, ratio)


# ----------------------------------------------------------------------------------------------------
# The three MAA ops (docs/method.md §1.4-1.6). Each works on float pixel levels (integers 0..255 stored as float)
# and returns levels, rounded as the released uint8 code rounds; the public uint8 wrappers follow each.


def _gray_weights(u: torch.Tensor) -> torch.Tensor:
    """Three U(0,1) draws normalised to sum 1 (method.md §1.4: normalised uniforms, not a flat Dirichlet)."""
    return u / u.sum(dim=1, keepdim=True)


def _weighted_gray(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W) gray = w·(R, G, B), truncated like the released code's cast to uint8."""
    r, g, b = x.split(1, dim=1)
    w = w[:, :, None, None]
    return (r * w[:, 0:1]).addcmul_(g, w[:, 1:2]).addcmul_(b, w[:, 2:3]).clamp_(0, 255).floor_()


@_batched
def weighted_grayscale(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gray = w·(R, G, B) with w = three U(0,1) draws normalised to sum 1; truncated to uint8, 3 channels."""
    _check_uint8(x, "weighted_grayscale")
    w = _gray_weights(_rand((len(x), 3), generator, x.device))
    return _weighted_gray(x.float(), w).expand_as(x).to(torch.uint8)


CUTMIX_UNIFORMS = 2 + BOX_UNIFORMS  # the channel pair, then the box


def _cutmix_params(u: torch.Tensor, height: int, width: int, faithful: bool, scale, ratio) -> tuple:
    """(background channel, foreground channel, top, left, h, w, found) per image.

    ``faithful`` samples the box as the released code does, for a W x H image (see cross_channel_cutmix)."""
    background = _uniform_int(u[:, 0], 3)  # an ordered pair of distinct channels, uniform over the 6
    foreground = (background + 1 + _uniform_int(u[:, 1], 2)) % 3
    bh, bw = (width, height) if faithful else (height, width)
    return (background, foreground, *_boxes(u[:, 2:], bh, bw, scale, ratio))


def _cutmix(x: torch.Tensor, background, foreground, inside: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W): the background channel, and the foreground channel where ``inside`` (n, H, W)."""
    return torch.where(inside[:, None], _channel(x, foreground), _channel(x, background))


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
    height, width = x.shape[-2:]
    u = _rand((len(x), CUTMIX_UNIFORMS), generator, x.device)
    background, foreground, *box = _cutmix_params(u, height, width, faithful, scale, ratio)
    inside = _in_box(*_grid(height, width, x.device), *box)
    return _cutmix(x, background, foreground, inside).expand_as(x)  # integer levels: no rounding


def _blend(degenerate: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """PIL ``Image.blend``: d + a(x - d) in float (``alpha`` per image), before truncation."""
    a = alpha.reshape(-1, *([1] * (image.ndim - 1))).float()
    d = degenerate.float()
    return (image.float() - d).mul_(a).add_(d)


def blend(degenerate: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, image, alpha)`` on uint8 tensors: d + a(x - d), truncated.

    ``degenerate`` may broadcast (e.g. one channel for all three). For alpha in [0, 1] the result lies
    between two values in [0, 255]; other alphas extrapolate and are clipped, as PIL does.
    """
    return _blend(degenerate, image, alpha).clamp(0, 255).to(torch.uint8)


def _sj_params(u: torch.Tensor, factor: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(channel, alpha) per image from 2 uniforms."""
    return _uniform_int(u[:, 0], 3), factor[0] + (factor[1] - factor[0]) * u[:, 1]


def _spectrum_jitter(x: torch.Tensor, channel: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Blend from one channel replicated (alpha 0) to the original colours (alpha 1), truncated."""
    return _blend(_channel(x, channel), x, alpha).clamp_(0, 255).floor_()


@_batched
def spectrum_jitter(x: torch.Tensor, generator: torch.Generator | None = None,
                    factor: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Blend between one random channel replicated (alpha=0) and the original colours (alpha=1)."""
    _check_uint8(x, "spectrum_jitter")
    u = _rand((len(x), 2), generator, x.device)
    return _spectrum_jitter(x.float(), *_sj_params(u, factor)).to(torch.uint8)


# ----------------------------------------------------------------------------------------------------
# Hue jitter (torchvision's ColorJitter(hue=h), the fourth choice of the one-of)


def _rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of image i's levels by ``shift[i]`` turns, rounded to levels.

    A hue rotation keeps value V (max) and chroma C (max - min) of every pixel and moves its hue h (in
    turns) to h' = h + shift; each channel is then V + C - 6C * clamp(|h' - centre| wrapped to the
    nearest turn, 1/6, 1/3), centres R 0, G 1/3, B 2/3 (the HSV hexcone). Matches torchvision's
    adjust_hue to +-1 level.
    """
    # (in-place ops where a result is used once: each fresh batch-sized tensor costs a pass of its own)
    r, g, b = x.unbind(1)
    v = x.amax(dim=1)
    chroma = x.amin(dim=1).neg_().add_(v)
    # hue * 6C by the sector of the max channel (ties: red, then green): exact on integer levels
    h = torch.where(v == r, g - b, torch.where(v == g, (b - r).add_(chroma, alpha=2), (r - g).add_(chroma, alpha=4)))
    h.div_(chroma.clamp(min=1).mul_(6))  # in turns; gray pixels (C = 0) keep h = 0 and stay gray
    centre = torch.arange(3, device=x.device) / 3
    y = h[:, None] + (shift[:, None] - centre)[:, :, None, None]  # each channel's distance from its centre
    y.sub_(torch.round(y)).abs_().clamp_(1 / 6, 1 / 3)
    base = v.add_(chroma).add_(0.5)[:, None]  # + 0.5 then truncation rounds, as adjust_hue's cast does
    return y.mul_(chroma.mul_(-6)[:, None]).add_(base).clamp_(0, 255).floor_()


def _hue_shift(u: torch.Tensor, hue: float) -> torch.Tensor:
    return (u * 2 - 1) * hue  # U(-hue, hue)


@_batched
def adjust_hue(x: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Rotate the HSV hue of image i by ``shift[i]`` (fraction of the circle; one number for all)."""
    _check_uint8(x, "adjust_hue")
    shift = torch.as_tensor(shift, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
    return _rotate_hue(x.float(), shift).to(torch.uint8)


@_batched
def hue_jitter(x: torch.Tensor, generator: torch.Generator | None = None, hue: float = 0.2) -> torch.Tensor:
    """ColorJitter(hue=h): per-sample HSV hue shift ~ U(-h, h) of the colour circle."""
    _check_uint8(x, "hue_jitter")
    return _rotate_hue(x.float(), _hue_shift(_rand((len(x),), generator, x.device), hue)).to(torch.uint8)


@_batched
def channel_select(x: torch.Tensor, channel: int) -> torch.Tensor:
    """One colour channel replicated to 3 (MSER's R / G / B test views)."""
    return x[:, channel:channel + 1].expand_as(x).contiguous()


# ----------------------------------------------------------------------------------------------------
# Pipelines


@dataclass
class AugmentConfig:
    """Train / test pipeline constants; defaults are the released MCJA recipe (docs/method.md §1)."""

    size: tuple[int, int] = (384, 192)  # (height, width); images are resized to this first
    # MAA: one of {hue, WG, CC, SJ} chosen uniformly, then applied with probability maa_p
    maa_p: float = 0.5
    hue: float = 0.2
    color_jitter: bool = True  # a disabled op stays in the 4-way choice as identity
    weighted_grayscale: bool = True
    cross_channel_cutmix: bool = True
    spectrum_jitter: bool = True
    cutmix_faithful: bool = False  # True: the released code's swapped box (docs/method.md §1.5)
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
_MAA_SPLIT = [1, 3, CUTMIX_UNIFORMS, 2]  # uniforms per image of each op, in MAA_OPS order


class ModalityAlignmentAugment(nn.Module):
    """One of {hue jitter, WG, CC, SJ} uniformly per image, applied with probability ``p`` (docs/method.md §1.1).

    Disabled ops keep their slot as identity, so disabling one does not raise the others' rate. Every
    op is computed for the whole batch and each image takes the one it drew (``torch.where``): a few
    wasted elementwise passes buy a constant, sync-free number of kernels.
    """

    num_uniforms = 2 + sum(_MAA_SPLIT)  # the choice, then every op's parameters

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or AugmentConfig()
        enabled = [c.color_jitter, c.weighted_grayscale, c.cross_channel_cutmix, c.spectrum_jitter]
        self.register_buffer("enabled", torch.tensor(enabled), persistent=False)

    def choice(self, u: torch.Tensor) -> torch.Tensor:
        """From 2 uniforms per image: the index into MAA_OPS it gets, or -1 for none."""
        op = _uniform_int(u[:, 0], 4)
        apply = (u[:, 1] < self.config.maa_p) & self.enabled.to(u.device)[op]
        return torch.where(apply, op, -1)

    def choose(self, n: int, generator=None, device="cpu") -> torch.Tensor:
        """Per image: the index into MAA_OPS that will be applied, or -1 for none."""
        return self.choice(_rand((n, 2), generator, torch.device(device)))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim == 3:
            return self.forward(x[None], generator)[0]
        _check_uint8(x, "ModalityAlignmentAugment")
        u = _rand((len(x), self.num_uniforms), generator, x.device)
        return self.apply_ops(x.float(), u, *_grid(*x.shape[-2:], x.device)).to(torch.uint8)

    def apply_ops(self, x: torch.Tensor, u: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                  skip: torch.Tensor | None = None) -> torch.Tensor:
        """Float levels (n, 3, H, W) -> levels, image i with the op its uniforms ``u[i]`` choose.

        ``rows`` / ``cols`` are the pixels' coordinates in the original image (broadcast to (n, H, W)),
        where the cutmix box is placed; ``skip`` (n,) bool marks images that get no op (infrared).
        """
        c = self.config
        op = self.choice(u[:, :2])
        if skip is not None:
            op = op.masked_fill(skip, -1)
        u_hue, u_gray, u_cutmix, u_sj = u[:, 2:].split(_MAA_SPLIT, dim=1)
        background, foreground, *box = _cutmix_params(u_cutmix, *x.shape[-2:], c.cutmix_faithful,
                                                      c.cutmix_scale, c.cutmix_ratio)
        candidates = (_rotate_hue(x, _hue_shift(u_hue[:, 0], c.hue)),
                      _weighted_gray(x, _gray_weights(u_gray)),
                      _cutmix(x, background, foreground, _in_box(rows, cols, *box)),
                      _spectrum_jitter(x, *_sj_params(u_sj, c.sj_factor)))
        out = x.clone()
        for k, candidate in enumerate(candidates):
            _put_(out, _per_image(op == k), candidate)
        return out


class TrainAugment(nn.Module):
    """The whole training pipeline after resizing, batched on any device (docs/method.md §1.1-1.2).

    uint8 (B, 3, H, W) at ``config.size`` + modality (B,) with 0 = visible, 1 = infrared ->
    MAA on visible images only -> horizontal flip -> pad (fill 127) + random crop back to (H, W) ->
    float, normalise -> random erasing. Returns float32 (B, 3, H, W).

    Flip and pad-crop are one gather: every output pixel reads its source pixel (or the fill). The MAA
    ops are per pixel, given the pixel's source coordinates for the cutmix box, so they run on the
    gathered pixels with the same result as before the geometry.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or AugmentConfig()
        self.maa = ModalityAlignmentAugment(c)
        std = torch.tensor(c.std).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("shift", -torch.tensor(c.mean).view(1, 3, 1, 1) / std, persistent=False)
        self.num_uniforms = self.maa.num_uniforms + 3 + 1 + BOX_UNIFORMS  # MAA, flip + crop, erasing

    def forward(self, x: torch.Tensor, modality: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        _check_uint8(x, "TrainAugment")
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, *c.size):
            raise ValueError(f"TrainAugment expects (B, 3, {c.size[0]}, {c.size[1]}) uint8 images, got {tuple(x.shape)}")
        modality = torch.as_tensor(modality, device=x.device).reshape(-1)
        if modality.shape[0] != x.shape[0]:
            raise ValueError(f"TrainAugment: {x.shape[0]} images but {modality.shape[0]} modality labels")
        if modality.is_floating_point():  # values are not checked: that would wait for the GPU
            raise TypeError(f"TrainAugment: modality must be integer labels (0 visible, 1 infrared), got {modality.dtype}")
        return self.apply_uniforms(x, modality, _rand((len(x), self.num_uniforms), generator, x.device))

    def apply_uniforms(self, x: torch.Tensor, modality: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The pipeline as a pure function of the images, their modalities and (B, num_uniforms) uniforms."""
        c = self.config
        n, _, height, width = x.shape
        u_maa, u_flip, u_dy, u_dx, u_erase, u_box = u.split([self.maa.num_uniforms, 1, 1, 1, 1, BOX_UNIFORMS], dim=1)
        # flip + RandomCrop(padding=pad, fill=pad_fill): output (r, q) reads the (mirrored) image at
        # (r + dy - pad, q + dx - pad), the fill where that is outside it
        rows = torch.arange(height, device=x.device) + _uniform_int(u_dy, 2 * c.pad + 1) - c.pad  # (n, H)
        cols = torch.arange(width, device=x.device) + _uniform_int(u_dx, 2 * c.pad + 1) - c.pad  # (n, W)
        cols = torch.where(u_flip < c.flip_p, width - 1 - cols, cols)  # in the unflipped source
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        index = rows.clamp(0, height - 1)[:, :, None] * width + cols.clamp(0, width - 1)[:, None, :]
        pixels = x.flatten(2).gather(2, index.flatten(1)[:, None].expand(n, 3, -1)).view(n, 3, height, width)
        levels = self.maa.apply_ops(pixels.float(), u_maa, rows[:, :, None], cols[:, None, :], skip=modality != 0)
        out = _put_(levels, ~inside[:, None], float(c.pad_fill)).mul_(self.scale).add_(self.shift)  # (x/255 - mean)/std
        box = _boxes(u_box, height, width, c.erase_scale, c.erase_ratio)
        erased = _in_box(*_grid(height, width, x.device), *box) & (u_erase < c.erase_p)[:, :, None]
        return _put_(out, erased[:, None], c.erase_value)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 image(s) to (height, width), no aspect preservation."""
    return TF.resize(x, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def to_rgb(image):
    """A PIL image as 8-bit RGB. 16-bit images (PIL modes "I;16*" and "I", e.g. 16-bit PNGs, common for
    thermal cameras) are scaled to 8 bits; ``convert("RGB")`` would clip them to white."""
    if image.mode.startswith("I;16") or image.mode == "I":
        import numpy as np
        from PIL import Image

        pixels = np.asarray(image, dtype=np.float64)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ValueError(f"image of mode {image.mode} with values {pixels.min():.0f}..{pixels.max():.0f}: "
                             "expected 16-bit values 0..65535")
        image = Image.fromarray(np.round(pixels / 257).astype(np.uint8))  # 65535 -> 255
    return image.convert("RGB")


def eval_transform(image, size: tuple[int, int] = (384, 192), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   channel: int | None = None) -> torch.Tensor:
    """Test-time view of one image (PIL or uint8 tensor): resize -> [single channel] -> normalise.

    ``channel`` 0/1/2 gives MSER's R/G/B views of a visible image; leave it None for infrared images
    (docs/method.md §1.7: the spectral modes never touch IR). No flip test-time augmentation.
    """
    x = TF.pil_to_tensor(to_rgb(image)) if not isinstance(image, torch.Tensor) else image
    _check_uint8(x, "eval_transform")
    x = resize(x, size)
    if channel is not None:
        x = channel_select(x, channel)
    return TF.normalize(x.float() / 255, list(mean), list(std))


def train_transform(image, modality: int, config: AugmentConfig | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image training view (for DataLoader workers): resize, then the same ops as ``TrainAugment``."""
    augment = TrainAugment(config)
    x = TF.pil_to_tensor(to_rgb(image)) if not isinstance(image, torch.Tensor) else image
    return augment(resize(x, augment.config.size)[None], torch.tensor([modality]), generator)[0]
