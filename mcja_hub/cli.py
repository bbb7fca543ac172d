"""`mcja` console script: parses arguments and calls the library. No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_models(args: argparse.Namespace) -> int:
    import timm

    import mcja_hub  # noqa: F401  (registers the architectures)

    for name in timm.list_models("mcja*"):
        print(name)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mcja_hub import MCJAModel

    model = MCJAModel.from_pretrained(args.model, revision=args.revision)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": args.model, "parameters": n_params, "embedding_dim": model.num_features,
                      "config": asdict(model.config)}, indent=2))
    return 0


def _cmd_preview_augment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    from mcja_hub.viz import preview_augment

    path = Path(args.image)
    if not path.is_file():
        raise SystemExit(f"mcja preview-augment: image {path} does not exist")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise SystemExit(f"mcja preview-augment: cannot read image {path}: {e}")
    out = preview_augment(image, args.out, n=args.n, seed=args.seed)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mcja_hub import __version__

    parser = argparse.ArgumentParser(prog="mcja", description="MCJA visible-infrared person re-identification")
    parser.add_argument("--version", action="version", version=f"mcja-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered timm architectures")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("info", help="load a model folder or Hub id and print its config")
    p.add_argument("--model", required=True, help="model folder or Hub id (org/name)")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("preview-augment", help="grid of what each augmentation does to an image")
    p.add_argument("--image", required=True, help="an image file (any format PIL reads)")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("-n", type=int, default=6, help="random draws per row (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_preview_augment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
