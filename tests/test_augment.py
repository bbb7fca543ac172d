"""MAA ops and pipelines: statistics from docs/method.md §1, parity with PIL / torchvision references."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from mcja_hub.augment import (MAA_OPS, AugmentConfig, ModalityAlignmentAugment, TrainAugment, adjust_hue, blend,
                              channel_select, cross_channel_cutmix, eval_transform, hue_jitter,
                              sample_boxes, spectrum_jitter, train_transform, weighted_grayscale)

H, W = 384, 192
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rand_images(n, h=H, w=W, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen(seed))


def plane_images(n, values=(10, 100, 200), h=H, w=W):
    """Each channel a constant: which channel a pixel came from is readable from its value."""
    return torch.tensor(values, dtype=torch.uint8).view(1, 3, 1, 1).expand(n, 3, h, w).contiguous()


# --- weighted grayscale -----------------------------------------------------------------------------

def test_weighted_grayscale_matches_formula():
    x = rand_images(64, 32, 16)
    out = weighted_grayscale(x, gen(1))
    assert out.dtype == torch.uint8 and torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    u = torch.rand((64, 3), generator=gen(1))  # the op's first draw
    w = (u / u.sum(1, keepdim=True)).double()
    ref = torch.floor((w[:, :, None, None] * x.double()).sum(1))
    assert (out[:, 0].double() - ref).abs().max() <= 1  # float32 vs float64 at integer boundaries
    assert (out[:, 0].double() == ref).float().mean() > 0.99


def test_weighted_grayscale_weight_distribution():
    # pure red: gray = floor(255 * w_R), w_R = u1/(u1+u2+u3) with E[w_R] = 1/3, w in (0, 1)
    out = weighted_grayscale(plane_images(20000, (255, 0, 0), 1, 1), gen(2))[:, 0, 0, 0].double()
    w_r = (out + 0.5) / 255
    assert abs(w_r.mean().item() - 1 / 3) < 0.01
    assert out.min() >= 0 and out.max() <= 255 and w_r.std() > 0.15  # spread over the simplex


# --- cross-channel cutmix ---------------------------------------------------------------------------

def _cutmix_stats(faithful, n=4000, chunk=500):
    areas, empty, rows_max, pairs = [], 0, 0, {}
    values = torch.tensor([10, 100, 200])
    g = gen(3)
    for _ in range(n // chunk):
        out = cross_channel_cutmix(plane_images(chunk), g, faithful=faithful)
        assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
        img = out[:, 0]
        for k in range(chunk):
            vals, counts = img[k].unique(return_counts=True)
            assert len(vals) <= 2 and set(vals.tolist()) <= set(values.tolist())
            bg = vals[counts.argmax()] if len(vals) == 2 and counts.min() != counts.max() else vals[0]
            fg_mask = img[k] != bg
            area = fg_mask.float().mean().item()
            areas.append(area)
            if area == 0:
                empty += 1
                continue
            r, c = fg_mask.nonzero().unbind(1)
            # the foreground region is one axis-aligned box
            assert fg_mask[r.min():r.max() + 1, c.min():c.max() + 1].all()
            rows_max = max(rows_max, r.max().item())
            pair = (bg.item(), img[k][fg_mask][0].item())
            pairs[pair] = pairs.get(pair, 0) + 1
    return np.array(areas), empty / n, rows_max, pairs


def test_cutmix_intended_box_statistics():
    areas, empty, rows_max, pairs = _cutmix_stats(faithful=False)
    assert abs(areas.mean() - 0.165) < 0.01  # docs/method.md §1.5: ~16.5 % mean mixed area
    assert empty < 0.002
    assert areas.max() <= 0.34 and areas[areas > 0].min() >= 0.015
    assert len(pairs) == 6 and min(pairs.values()) / max(pairs.values()) > 0.8  # 6 ordered pairs, uniform


def test_cutmix_faithful_quirk_statistics():
    areas, empty, rows_max, _ = _cutmix_stats(faithful=True)
    assert abs(areas.mean() - 0.082) < 0.01  # docs/method.md §1.5: ~8.2 %
    assert abs(empty - 0.26) < 0.03  # ~26 % empty boxes
    assert rows_max < W  # rows confined to the top W (=192) rows


def test_sample_boxes_matches_randomerasing_rules():
    top, left, h, w, found = sample_boxes(20000, H, W, (0.02, 0.33), (0.3, 3.3), gen(4))
    assert found.float().mean() > 0.999
    assert torch.all(h[found] < H) and torch.all(w[found] < W)
    assert torch.all(top[found] >= 0) and torch.all(top[found] + h[found] <= H)
    assert torch.all(left[found] >= 0) and torch.all(left[found] + w[found] <= W)
    area = (h * w).double()[found] / (H * W)
    assert area.min() > 0.015 and area.max() < 0.345


# --- spectrum jitter and hue ------------------------------------------------------------------------

def test_spectrum_jitter_equals_pil_blend():
    x = rand_images(16, 24, 12)
    out = spectrum_jitter(x, gen(5))
    u = torch.rand((16, 2), generator=gen(5))  # replay the op's draw: channel, alpha
    channel, alpha = (u[:, 0] * 3).floor().long(), u[:, 1]
    for k in range(16):
        img = Image.fromarray(x[k].permute(1, 2, 0).numpy())
        c = x[k, channel[k]].numpy()
        degenerate = Image.fromarray(np.stack([c] * 3, axis=2))
        ref = torch.from_numpy(np.array(Image.blend(degenerate, img, float(alpha[k])))).permute(2, 0, 1)
        assert (out[k].int() - ref.int()).abs().max() <= 1, k
        assert (out[k] == ref).float().mean() > 0.99


def test_blend_limits():
    x = rand_images(2, 8, 8)
    single = x[:, :1]
    assert torch.equal(blend(single, x, torch.zeros(2)), single.expand_as(x))
    assert torch.equal(blend(single, x, torch.ones(2)), x)


@pytest.mark.parametrize("shift", [-0.2, -0.05, 0.0, 0.11, 0.2, 0.5])
def test_adjust_hue_matches_torchvision(shift):
    x = rand_images(4, 32, 16)
    x[:, :, :4] = 77  # gray pixels
    x[:, 0, 4:8] = x[:, 1, 4:8]  # ties between max channels
    ref = TF.adjust_hue(x, shift)
    diff = (adjust_hue(x, torch.full((4,), shift)).int() - ref.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.1


def test_hue_jitter_range():
    x = rand_images(200, 8, 8)
    out = hue_jitter(x, gen(6), hue=0.2)
    # value (max) and chroma are preserved by a hue rotation (up to rounding)
    assert (out.amax(1).int() - x.amax(1).int()).abs().max() <= 1
    assert (out.int() - x.int()).abs().float().mean() > 5  # it does change colours


# --- the one-of MAA and the pipelines ---------------------------------------------------------------

def test_maa_selection_frequencies():
    choice = ModalityAlignmentAugment().choose(80000, gen(7))
    freq = [(choice == k).float().mean().item() for k in range(4)]
    assert all(abs(f - 1 / 8) < 0.005 for f in freq), freq
    assert abs((choice == -1).float().mean().item() - 0.5) < 0.006


def test_disabled_op_keeps_its_slot():
    cfg = AugmentConfig(weighted_grayscale=False, spectrum_jitter=False)
    choice = ModalityAlignmentAugment(cfg).choose(80000, gen(8))
    freq = [(choice == k).float().mean().item() for k in range(4)]
    assert freq[1] == 0 and freq[3] == 0
    assert abs(freq[0] - 1 / 8) < 0.005 and abs(freq[2] - 1 / 8) < 0.005  # not raised to 1/4


def test_maa_applies_the_chosen_op():
    cfg = AugmentConfig(maa_p=1.0, color_jitter=False, cross_channel_cutmix=False, spectrum_jitter=False)
    x = rand_images(400, 8, 8)
    out = ModalityAlignmentAugment(cfg)(x, gen(9))
    gray = (out[:, 0] == out[:, 1]).all((1, 2)) & (out[:, 1] == out[:, 2]).all((1, 2))
    same = (out == x).flatten(1).all(1)
    assert torch.all(gray ^ same)  # each image is either grayscaled or untouched
    assert abs(gray.float().mean().item() - 0.25) < 0.06
    assert ModalityAlignmentAugment()(x[0], gen(0)).shape == x[0].shape  # single image


def _normalise(x):
    return (x.float() / 255 - MEAN) / STD


def test_train_augment_ir_gets_no_maa_and_exact_normalisation():
    cfg = AugmentConfig(size=(32, 16), flip_p=0.0, pad=0, erase_p=0.0, maa_p=1.0)
    x = rand_images(64, 32, 16)
    modality = torch.tensor([1] * 32 + [0] * 32)
    out = TrainAugment(cfg)(x, modality, gen(10))
    assert out.dtype == torch.float32 and out.shape == (64, 3, 32, 16)
    torch.testing.assert_close(out[:32], _normalise(x[:32]), rtol=0, atol=1e-5)
    changed = ~torch.isclose(out[32:], _normalise(x[32:]), atol=1e-5).flatten(1).all(1)
    assert changed.float().mean() > 0.6  # p=1: every visible image gets an op (hue by 0 is rare)


def test_train_augment_geometry_equals_flip_pad_crop():
    """Each output is the normalised RandomCrop(padding=3, fill=127) of the image or its mirror."""
    cfg = AugmentConfig(size=(20, 12), pad=3, maa_p=0.0, erase_p=0.0)
    x = rand_images(40, 20, 12, seed=11)
    out = TrainAugment(cfg)(x, torch.zeros(40, dtype=torch.long), gen(12))
    flips = offsets = 0
    for k in range(40):
        matches = []
        for flip in (False, True):
            src = x[k].flip(-1) if flip else x[k]
            padded = TF.pad(src, [3, 3, 3, 3], fill=127)
            for dy in range(7):
                for dx in range(7):
                    if torch.allclose(out[k], _normalise(padded[:, dy:dy + 20, dx:dx + 12]), atol=1e-5):
                        matches.append((flip, dy, dx))
        assert matches, f"image {k} is no flip/pad/crop of its input"
        flips += matches[0][0]
        offsets += matches[0][1:] != (3, 3)
    assert 8 < flips < 32 and offsets > 25


def test_train_augment_random_erasing():
    cfg = AugmentConfig(size=(64, 32), flip_p=0.0, pad=0, maa_p=0.0, erase_p=0.5)
    x = torch.full((2000, 3, 64, 32), 200, dtype=torch.uint8)
    out = TrainAugment(cfg)(x, torch.ones(2000, dtype=torch.long), gen(13))
    erased = (out == 0).all(1)  # value 0 in normalised units; 200 never normalises to 0
    frac = erased.flatten(1).float().mean(1)
    assert abs((frac > 0).float().mean().item() - 0.5) < 0.04
    assert frac[frac > 0].min() > 0.015 and frac.max() < 0.31  # scale (0.02, 0.30), rounding


def test_train_augment_reproducible_and_checks_input():
    x, m = rand_images(8, H, W), torch.tensor([0, 1] * 4)
    aug = TrainAugment()
    assert torch.equal(aug(x, m, gen(1)), aug(x, m, gen(1)))
    assert not torch.equal(aug(x, m, gen(1)), aug(x, m, gen(2)))
    with pytest.raises(ValueError, match=r"expects \(B, 3, 384, 192\)"):
        aug(rand_images(2, 10, 10), torch.zeros(2))
    with pytest.raises(ValueError, match="2 images but 3 modality labels"):
        aug(x[:2], torch.zeros(3))
    with pytest.raises(TypeError, match="uint8"):
        aug(x.float(), m)
    with pytest.raises(TypeError, match="modality must be integer labels"):
        aug(x, m.float() / 2)
    with pytest.raises(ValueError, match=r"expects \(B, 3, 384, 192\)"):
        aug(x[:, :1], m)  # one channel
    with pytest.raises(ValueError, match=r"expects \(3, H, W\) or \(B, 3, H, W\)"):
        weighted_grayscale(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))


def test_augment_modules_keep_nn_module_apply():
    # nn.Module.apply(fn) recurses through children by calling their .apply: an op method must not shadow it
    seen = []
    TrainAugment().apply(lambda module: seen.append(type(module).__name__))
    assert seen == ["ModalityAlignmentAugment", "TrainAugment"]


def test_train_transform_per_image_and_eval_transform():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 50, 3), dtype=np.uint8))
    t = train_transform(img, modality=0, generator=gen(0))
    assert t.shape == (3, H, W) and t.dtype == torch.float32
    e = eval_transform(img)
    assert e.shape == (3, H, W)
    raw = TF.resize(TF.pil_to_tensor(img), [H, W], antialias=True)
    torch.testing.assert_close(e, _normalise(raw), rtol=0, atol=1e-5)
    for c in range(3):
        g = eval_transform(img, channel=c) * STD + MEAN  # de-normalise: all channels = channel c
        torch.testing.assert_close(g, (raw[c].float() / 255).expand(3, H, W), rtol=0, atol=1e-5)
    assert torch.equal(channel_select(raw, 1)[2], raw[1])


def test_config_validation():
    with pytest.raises(ValueError, match="maa_p"):
        AugmentConfig(maa_p=1.5)
    assert MAA_OPS == ("hue", "weighted_grayscale", "cross_channel_cutmix", "spectrum_jitter")


@pytest.mark.slow
def test_train_augment_compiles_as_one_graph():
    # fullgraph=True fails on any graph break: a host sync, a data-dependent shape, Python on tensor values
    aug = TrainAugment(AugmentConfig(size=(32, 16), pad=2))
    x, m = rand_images(12, 32, 16), torch.tensor([0, 1, 0] * 4)
    u = torch.rand(12, aug.num_uniforms, generator=gen(1))
    compiled = torch.compile(aug.apply_uniforms, fullgraph=True, dynamic=False)
    assert torch.equal(compiled(x, m, u), aug.apply_uniforms(x, m, u))


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    from mcja_hub.augment import to_rgb
    values = np.linspace(0, 65535, 64 * 32).reshape(64, 32).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "thermal16.png")
    with Image.open(tmp_path / "thermal16.png") as im:
        assert im.mode.startswith("I")  # what PIL gives for a 16-bit PNG
        rgb = np.asarray(to_rgb(im))
    assert rgb.shape == (64, 32, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    np.testing.assert_array_equal(rgb[..., 0], np.round(values / 257).astype(np.uint8))  # 0..255, not all white
    with Image.open(tmp_path / "thermal16.png") as im:
        x = eval_transform(im, size=(64, 32)) * STD + MEAN
    assert x.min() < 0.01 and x.max() > 0.99 and abs(x.mean().item() - 0.5) < 0.01
