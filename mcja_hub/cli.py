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

    model = _load_model(args.model, args.revision)
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
        raise UsageError(f"--image {path}: no such file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"--image {path}: cannot read it as an image ({e})") from None
    out = preview_augment(image, args.out, n=args.n, seed=args.seed)
    print(f"wrote {out}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    import time

    from mcja_hub.data import generate_synthetic

    t0 = time.time()
    out = generate_synthetic(args.out, args.layout, ids=args.ids, seed=args.seed, size=(args.height, args.width),
                             workers=args.workers)
    n = sum(1 for p in out.rglob("*") if p.suffix in (".jpg", ".bmp"))
    print(f"wrote {n} images of {args.ids} identities in the {args.layout} layout to {out} ({time.time() - t0:.1f} s)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mcja_hub.evaluation import evaluate, format_table

    _folder(args.data_dir, "--data-dir")
    model = _load_model(args.model, args.revision)
    if args.device:
        model.to(args.device)
    report = evaluate(model, args.dataset, args.data_dir, modes=args.mode, shots=args.shots, trials=args.trials,
                      split=args.split, rerank=args.rerank, flip=args.flip, batch_size=args.batch_size,
                      num_workers=args.workers)
    report["model"] = args.model
    print(format_table(report))
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        from mcja_hub.viz import plot_cmc

        print(f"wrote {plot_cmc(report, args.plot)}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcja_hub.hub import write_model_card

    _folder(args.model, "--model")
    if not Path(args.results).is_file():
        raise UsageError(f"--results {args.results}: no such file")
    report = json.loads(Path(args.results).read_text())
    path = write_model_card(args.model, report, None, repo_id=args.repo_id, data_label=args.data_label)
    print(f"wrote {path}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcja_hub.data import DATASETS
    from mcja_hub.hub import released_dataset, write_model_card
    from mcja_hub.models.convert import convert_released_checkpoint

    if not Path(args.checkpoint).is_file():
        raise UsageError(f"--checkpoint {args.checkpoint}: no such file")
    model = convert_released_checkpoint(args.checkpoint, last_stride=args.last_stride, backbone=args.backbone)
    dataset = args.dataset or released_dataset(args.checkpoint, model.num_classes)
    how = "given" if args.dataset else f"inferred from the file name or its {model.num_classes} classes"
    training = {"origin": f"converted from {Path(args.checkpoint).name}, a checkpoint of the released MCJA code "
                          "(github.com/workingcoder/MCJA); trained by that code, not evaluated here",
                "dataset": dataset if dataset else f"not known ({model.num_classes} classes; give --dataset)"}
    if dataset:
        training["dataset_source"] = how
    model.save_pretrained(args.out)
    write_model_card(args.out, None, training)
    print(f"wrote {args.out} (config.json, model.safetensors, README.md); trained on: "
          f"{DATASETS[dataset].display_name + ' (' + how + ')' if dataset else 'not known (give --dataset)'}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from mcja_hub.search import embed_gallery, save_gallery

    model = _load_model(args.model)
    try:
        gallery = embed_gallery(model, args.images, batch_size=args.batch_size, num_workers=args.workers)
    except FileNotFoundError as e:
        raise UsageError(f"--images {e}") from None
    save_gallery(gallery, args.images, args.out, model, str(args.model))
    print(f"wrote {args.out}: {tuple(gallery.embeddings.shape)} L2-normalised embeddings of {len(gallery.paths)} images")
    return 0


def _person_id(path) -> int | None:
    """The identity of an image in a dataset layout (its parent folder is the integer id), else None."""
    from pathlib import Path

    name = Path(path).parent.name
    return int(name) if name.isdigit() else None


def _cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcja_hub.evaluation.evaluate import embed_images
    from mcja_hub.search import distinct_names, load_gallery, rank
    from mcja_hub.viz import ranked_grid

    model = _load_model(args.model)
    queries = [Path(q) for q in args.query]
    for q in queries:
        if not q.is_file():
            raise UsageError(f"--query {q}: no such file")
    if not Path(args.gallery).exists():
        raise UsageError(f"--gallery {args.gallery}: no such folder or file")
    try:
        gallery = load_gallery(args.gallery, model, f"--model {args.model}", num_workers=args.workers)
    except ValueError as e:
        raise UsageError(f"--gallery {e}") from None
    indices, distances = rank(embed_images(model, queries, num_workers=0, progress=False), gallery.embeddings, args.topk)
    ranked = [[gallery.paths[j] for j in row] for row in indices.tolist()]
    print("rank  cosine distance (lower is closer)  gallery image")
    for q, row, d in zip(queries, ranked, distances.tolist()):
        print(f"{q}:")
        for r, (path, dj) in enumerate(zip(row, d), 1):
            print(f"  {r:>3}  {dj:.4f}  {path}")
    if args.out:
        known = all(_person_id(p) is not None for p in [*queries, *gallery.paths])
        correct = [[_person_id(g) == _person_id(q) for g in row] for q, row in zip(queries, ranked)]
        ranked_grid(queries, ranked, args.out, distances=distances.tolist(), correct=correct if known else None,
                    query_labels=distinct_names(queries))
        print(f"wrote {args.out}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from mcja_hub.hub import push_model

    _folder(args.model, "--model")
    url = push_model(args.model, args.repo, private=args.private, commit_message=args.message, revision=args.revision)
    print(f"pushed {args.model} to {args.repo}: {url}")
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from mcja_hub.export import export_onnx

    out = export_onnx(_load_model(args.model), args.out, opset=args.opset)
    print(f"wrote {out} (input 'images' (N, 3, H, W) normalised as config.json says; output 'embeddings')")
    return 0


def _count(low: int):
    """argparse type: an integer >= ``low`` (argparse names the flag and exits 2 otherwise)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    from mcja_hub.data.catalog import DATASETS

    dataset_choices = "{" + ",".join(DATASETS) + "}"
    from mcja_hub import __version__

    parser = argparse.ArgumentParser(prog="mcja", description="MCJA visible-infrared person re-identification")
    parser.add_argument("--version", action="version", version=f"mcja-hub {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    p.add_argument("-n", type=_count(1), default=6, help="random draws per row (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_preview_augment)

    p = sub.add_parser("synth", help="write a synthetic VI-ReID dataset in an official layout")
    p.add_argument("--layout", "--dataset", dest="layout", type=_dataset, default="sysu_mm01", metavar=dataset_choices,
                   help="whose official layout to write")
    p.add_argument("--out", required=True, help="new (or empty) folder")
    p.add_argument("--ids", type=_count(1), default=60, help="number of identities (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=_count(8), default=128)
    p.add_argument("--width", type=_count(8), default=64)
    p.add_argument("--workers", type=_count(0), default=None, help="processes (default: the CPU count, at most 8)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("eval", help="evaluate a model with a benchmark's official protocol")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--revision", default=None)
    p.add_argument("--dataset", required=True, type=_dataset, metavar=dataset_choices)
    p.add_argument("--data-dir", required=True, help="the dataset's root folder (official layout)")
    p.add_argument("--mode", nargs="+", default=["all", "indoor"], choices=["all", "indoor"], help="SYSU-MM01 search mode(s)")
    p.add_argument("--shots", nargs="+", type=int, default=[1, 10], choices=[1, 10], help="SYSU-MM01 gallery shots")
    p.add_argument("--trials", type=_count(1), default=10, help="SYSU-MM01 / LLCM trials (default 10)")
    p.add_argument("--split", "--trial", dest="split", type=_count(1), default=None,
                   help="RegDB: the split the model was trained on (1..10); required for RegDB")
    p.add_argument("--rerank", default="none", choices=["none", "kreciprocal", "mser"])
    p.add_argument("--flip", action="store_true", help="average with mirrored images (not in the paper)")
    p.add_argument("--batch-size", type=_count(1), default=128)
    p.add_argument("--workers", type=_count(0), default=2)
    p.add_argument("--device", default=None, help="e.g. cuda; default: where the model loads (cpu)")
    p.add_argument("--json", default=None, help="write the full report (incl. per-rank CMC) here")
    p.add_argument("--plot", default=None, help="write a CMC curve PNG here")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("card", help="(re)write a model folder's README.md card from an evaluation report")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--results", required=True, help="report JSON written by `mcja eval --json` or training; its "
                   "results replace the card's (the training record and warnings stay)")
    p.add_argument("--repo-id", default=None, help="the Hub id to show in the usage snippet")
    p.add_argument("--data-label", default=None, help="say what was evaluated when it is not the real benchmark")
    p.set_defaults(func=_cmd_card)

    p = sub.add_parser("convert", help="convert a released-MCJA-code .pth checkpoint into a model folder")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--last-stride", type=int, default=2, choices=[1, 2])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--dataset", type=_dataset, default=None, metavar=dataset_choices,
                   help="what it was trained on (default: from the file name, else 395 / 206 / 713 classes)")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("embed", help="embed a folder of images into a safetensors file")
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True, help="folder (searched recursively)")
    p.add_argument("--out", required=True, help="output .safetensors (tensor 'embeddings', metadata 'paths')")
    p.add_argument("--batch-size", type=_count(1), default=128)
    p.add_argument("--workers", type=_count(0), default=2)
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("search", help="rank a gallery for query images and draw the ranked lists")
    p.add_argument("--model", required=True)
    p.add_argument("--query", required=True, nargs="+", help="query image(s)")
    p.add_argument("--gallery", required=True, help="folder of images, or a .safetensors from `mcja embed`")
    p.add_argument("--topk", type=_count(1), default=10)
    p.add_argument("--out", default=None, help="ranked-list PNG (green/red borders when ids are known)")
    p.add_argument("--workers", type=_count(0), default=2)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("push", help="upload a model folder to the Hub (checked first); same as `hf upload REPO DIR`")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--repo", required=True, help="org/name")
    p.add_argument("--private", action="store_true")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--revision", default=None, help="branch to commit to")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("export-onnx", help="export the embedding model to ONNX (needs the [onnx] extra)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--opset", type=int, default=None)
    p.set_defaults(func=_cmd_export_onnx)
    return parser


def _dataset(value: str) -> str:
    """A dataset name of ``data.DATASETS`` (earlier spellings such as ``sysu`` with a deprecation warning)."""
    import warnings

    from mcja_hub.data.catalog import dataset

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            name = dataset(value).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    for w in caught:  # one line, not a warning pointing into argparse
        print(f"mcja: {w.message}", file=sys.stderr)
    return name


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def _load_model(spec: str, revision: str | None = None):
    """``--model``: a model folder, or a Hub id (org/name) when no such folder exists."""
    import re
    from pathlib import Path

    from mcja_hub import MCJAModel

    if not Path(spec).expanduser().exists() and not re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        raise UsageError(f"--model {spec}: no such model folder (and not a Hub id like org/name)")
    return MCJAModel.from_pretrained(spec, revision=revision)


def _folder(path: str, flag: str) -> str:
    from pathlib import Path

    if not Path(path).is_dir():
        raise UsageError(f"{flag} {path}: no such folder")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # every mistake as one line naming the culprit; --debug shows where it came from
        if args.debug:
            raise
        kind = "" if isinstance(e, UsageError) else f"{type(e).__name__}: "
        message = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f"mcja {args.command}: {kind}{message}", file=sys.stderr)
        return 2
    except SystemExit as e:
        if isinstance(e.code, str):  # SystemExit("message") raised by the library: the same one line
            if args.debug:
                raise
            print(f"mcja {args.command}: {e.code.removeprefix(f'mcja {args.command}: ')}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
