"""Pictures for people: augmentation previews, ranked-list grids and CMC curves (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import torch

from . import augment as A


def _to_numpy(img: torch.Tensor):
    return img.permute(1, 2, 0).cpu().numpy()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | Path, dpi: int = 110) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    _pyplot().close(fig)
    return out


def augmentation_rows(image, n: int = 6, seed: int = 0, config: A.AugmentConfig | None = None):
    """(label, list of uint8 (3, H, W) images) per row: each MAA op n times, then the full pipelines."""
    from torchvision.transforms.v2.functional import pil_to_tensor

    cfg = config or A.AugmentConfig()
    x = image if isinstance(image, torch.Tensor) else pil_to_tensor(A.to_rgb(image))
    x = A.resize(x, cfg.size)
    batch = x[None].expand(n, -1, -1, -1).contiguous()
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)

    def denorm(t):
        return (t * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)

    train = A.TrainAugment(cfg)
    return [
        ("input (resized)", [x]),
        (f"hue jitter (+-{cfg.hue})", list(A.hue_jitter(batch, g, cfg.hue))),
        ("weighted grayscale", list(A.weighted_grayscale(batch, g))),
        ("cross-channel cutmix", list(A.cross_channel_cutmix(batch, g))),
        ("cutmix, released-code box", list(A.cross_channel_cutmix(batch, g, faithful=True))),
        ("spectrum jitter", list(A.spectrum_jitter(batch, g))),
        ("visible train pipeline", list(denorm(train(batch, torch.zeros(n, dtype=torch.long), g)))),
        ("infrared train pipeline", list(denorm(train(batch, torch.ones(n, dtype=torch.long), g)))),
    ]


def preview_augment(image, out: str | Path, n: int = 6, seed: int = 0,
                    config: A.AugmentConfig | None = None) -> Path:
    """Write a labelled grid: one row per op / pipeline, ``n`` random draws each."""
    plt = _pyplot()
    rows = augmentation_rows(image, n, seed, config)
    h, w = rows[0][1][0].shape[-2:]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.3 * w / h + 1.6, len(rows) * 1.3), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(_to_numpy(images[c]))
        axes[r][0].set_title(label, loc="left", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def plot_cmc(report: dict, out: str | Path) -> Path:
    """CMC curves (rank 1..20) of every setting of an ``evaluate`` report."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for setting, r in report["results"].items():
        ranks = range(1, len(r["cmc"]) + 1)
        ax.plot(ranks, r["cmc"], marker="o", markersize=3, label=f"{setting} (R1 {r['R1']:.1f}, mAP {r['mAP']:.1f})")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks([1, 5, 10, 15, 20])
    ax.grid(alpha=0.3)
    ax.set_title(f"CMC: {report['dataset']}, re-ranking {report['rerank']}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, out, dpi=120)


def ranked_grid(queries: list, galleries: list[list], out: str | Path, distances=None, correct=None,
                query_labels: list[str] | None = None) -> Path:
    """One row per query: the query image, then its ranked gallery images with the distance under each
    ("d=", cosine distance: lower is closer) and a green / red border when ``correct[i][j]`` says whether
    the identity matches.

    ``queries``: images (PIL or paths); ``galleries[i]``: the ranked images of query i.
    """
    from PIL import Image

    plt = _pyplot()

    def load(im):
        return A.to_rgb(Image.open(im) if isinstance(im, (str, Path)) else im)

    cols = 1 + max(len(g) for g in galleries)
    fig, axes = plt.subplots(len(queries), cols, figsize=(cols * 0.95 + 0.4, len(queries) * 1.9), squeeze=False)
    for i, (q, gal) in enumerate(zip(queries, galleries)):
        for j in range(cols):
            axes[i][j].axis("off")
        axes[i][0].imshow(load(q))
        axes[i][0].set_title(query_labels[i] if query_labels else "query", fontsize=7)
        for j, g in enumerate(gal):
            ax = axes[i][j + 1]
            ax.imshow(load(g))
            if correct is not None:
                ax.axis("on")
                ax.set_xticks([]), ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor("#1a9c3c" if correct[i][j] else "#d62728")
                    spine.set_linewidth(3)
            if distances is not None:
                ax.set_xlabel(f"d={float(distances[i][j]):.3f}", fontsize=6, labelpad=1)
                ax.xaxis.label.set_visible(True)
            ax.set_title(f"#{j + 1}", fontsize=6)
    if distances is not None:  # say once what the numbers are
        axes[0][0].text(0.5, -0.02, "d: cosine distance\n(lower is closer)", transform=axes[0][0].transAxes,
                        ha="center", va="top", fontsize=5)
    fig.tight_layout()
    return _save(fig, out)
