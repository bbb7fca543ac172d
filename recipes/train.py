"""Train MCJA (docs/method.md §4) with accelerate, top to bottom.

    accelerate launch recipes/train.py --config recipes/configs/sysu.yaml --data-dir /data/SYSU-MM01 [section.key=value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train.py ...   # several GPUs, or CPU processes on a GPU-less machine
    accelerate launch --mixed_precision bf16 recipes/train.py ...       # AMP; GeM, losses stay fp32
    python recipes/train.py --config ... --resume latest                # continue exactly where it stopped

Order: config -> Accelerator + trackers -> seed -> data -> model -> optimizer -> prepare -> resume ->
epochs (PK batches, batched MAA on the device, ID + CMR loss) -> checkpoint every epoch (and every N
steps) -> final model folder with its evaluation in the card.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.augment import AugmentConfig, TrainAugment, resize, to_rgb
from mcja_hub.data import DATASETS, build_protocols, dataset, load_vireid
from mcja_hub.data.layouts import fingerprint, synthetic_marker
from mcja_hub.data.sampler import PKSampler
from mcja_hub.evaluation import evaluate, format_table
from mcja_hub.hub import write_model_card
from mcja_hub.losses import cmr_loss, cross_modal_rank1, id_loss


@dataclass
class DataConfig:
    dataset: str = "sysu_mm01"  # sysu_mm01 | regdb | llcm
    data_dir: str = ""
    split: int = 1  # RegDB's split 1..10: one model per split, trained and tested on it (other datasets: unused)
    synthetic: bool = False  # the generator's data: said so in the card, never passed off as the benchmark
    p: int = 8  # identities per batch
    k: int = 16  # images per identity
    balance_modalities: bool = False  # K/2 visible + K/2 infrared per identity (not in the released recipe)
    num_workers: int = 4
    cache_decoded: bool = True  # decode + resize each image once, into a file beside the Arrow data


@dataclass
class LossConfig:
    id_weight: float = 1.0
    cmr_weight: float = 1.0  # 0 = no CMR loss
    cmr_eps: float = 0.5
    label_smoothing: float = 0.0


@dataclass
class OptimConfig:
    """Adam, L2 weight decay on all trained parameters, lr decayed by ``gamma`` at each milestone epoch."""

    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    epochs: int = 140
    milestones: list = field(default_factory=lambda: [80, 120])
    gamma: float = 0.1


@dataclass
class EvalConfig:
    """The test-protocol evaluation that goes into the card (and, with ``select_best``, every epoch)."""

    modes: list = field(default_factory=lambda: ["all", "indoor"])
    shots: list = field(default_factory=lambda: [1, 10])
    trials: int = 10
    select_best: bool = False  # released-code behaviour: evaluate on the TEST set every epoch, keep the best R1


@dataclass
class RunConfig:
    """How the run is driven: may change freely on resume."""

    output_dir: str = "outputs/mcja"
    max_steps: int = 0  # stop after this many optimizer steps in total (0 = run all epochs)
    save_every_steps: int = 0  # extra mid-epoch checkpoints (0 = only at epoch ends)
    keep_checkpoints: int = 3
    compile_augment: bool = False  # torch.compile the batched augmentation (for GPUs; ~1 min at start)
    report_to: str = "none"  # none | csv | tensorboard | wandb | all (accelerate trackers)
    log_every: int = 10


def _release_model() -> MCJAConfig:
    # torchvision's ImageNet trunk as the released code, MDA modules of the TCSVT version
    return MCJAConfig(backbone="resnet50.tv_in1k", pretrained_backbone=True, mda_layers=(0, 2, 3, 0))


@dataclass
class TrainConfig:
    """One training run; the YAML files mirror it (``model: {mda_m: 2}``), and ``section.key=value`` (or
    just ``key=value`` when the key names one field) overrides it on the command line."""

    data: DataConfig = field(default_factory=DataConfig)
    model: MCJAConfig = field(default_factory=_release_model)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    seed: int = 8

    def __post_init__(self) -> None:
        # The augmentation feeds the model: its size and normalisation are the model's, not settings of their own.
        self.augment = dataclasses.replace(self.augment, size=self.model.input_size, mean=self.model.mean,
                                           std=self.model.std)

    def problem(self) -> str | None:
        """The first value out of range, as a message (None when all are fine)."""
        values = flatten(self)
        at_least = {"optim.epochs": 1, "data.p": 1, "data.k": 1, "run.keep_checkpoints": 1, "run.log_every": 1,
                    "eval.trials": 1, "run.max_steps": 0, "run.save_every_steps": 0, "data.num_workers": 0,
                    "optim.weight_decay": 0.0}
        for key, low in at_least.items():
            if not values[key] >= low:
                return f"config key {key!r}: expected >= {low}, got {values[key]!r}"
        for key in ("optim.lr", "loss.cmr_eps", "optim.gamma"):
            if not values[key] > 0:
                return f"config key {key!r}: expected > 0, got {values[key]!r}"
        return None


SECTIONS = ("data", "model", "augment", "loss", "optim", "eval", "run")
# Set from elsewhere, never from a config file.
DERIVED = {"model.num_classes": "the number of training identities in the data",
           "augment.size": "it follows model.input_size", "augment.mean": "it follows model.mean",
           "augment.std": "it follows model.std"}


def flatten(config, prefix: str = "") -> dict:
    """``{"section.key": value}`` of a TrainConfig or of its nested dict (a YAML file, trainer_state.json)."""
    items = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    flat = {}
    for key, value in items.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


DEFAULTS = {k: v for k, v in flatten(TrainConfig()).items() if k not in DERIVED}


def to_dict(cfg: TrainConfig) -> dict:
    """The nested plain dict a YAML config holds (derived keys left out): train_config.yaml, trainer_state.json."""
    nested = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for key in DERIVED:
        section, name = key.split(".")
        del nested[section][name]
    return nested


# What a resumed run cannot change: the model, the augmentation, the data and its sampling, the seed (the
# data folder's content is compared too, by fingerprint). How a run is driven (RUN_CONTROL) may change
# freely. Any other key (optimisation, losses, evaluation) may change on resume only when named on the
# command line; the change is recorded in trainer_state.json and the card.
RUN_CONTROL = ("data.data_dir", "data.num_workers", "data.cache_decoded",
               *(k for k in DEFAULTS if k.startswith("run.")))
RESUME_MUST_MATCH = tuple(k for k in DEFAULTS if k.split(".")[0] in ("model", "augment", "data", "seed")
                          and k not in RUN_CONTROL)

# Keys of the flat config of earlier versions that are not a field's bare name any more.
RENAMED = {"trial": "data.split", "pretrained": "model.pretrained_backbone", "eval_modes": "eval.modes",
           "eval_shots": "eval.shots", "eval_trials": "eval.trials"}


def resolve_key(key: str) -> str:
    """``section.key`` as given, or the one field a bare ``key`` names (``lr`` -> ``optim.lr``)."""
    if key in DEFAULTS:
        return key
    if key in RENAMED:
        print(f"config key {key!r} is now {RENAMED[key]!r}; the old name works until the next release", file=sys.stderr)
        return RENAMED[key]
    if key == "maa":
        raise ValueError("config key 'maa' is now 'augment.maa_p' (0.5 as released, 0 = no MAA)")
    named = [k for k in DEFAULTS if k.rsplit(".", 1)[-1] == key]
    if len(named) == 1:
        return named[0]
    for derived, source in DERIVED.items():
        if key in (derived, derived.rsplit(".", 1)[-1]):
            raise ValueError(f"config key {derived!r} is not set by hand: {source}")
    raise ValueError(f"unknown config key {key!r}; known: {', '.join(DEFAULTS)}")


def load_config(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", default=[],
                        help="YAML file mirroring TrainConfig; may repeat, later files override earlier ones")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir")
    parser.add_argument("--split", "--trial", dest="split", type=int, help="RegDB split 1..10 (--trial: old name)")
    parser.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    parser.add_argument("--report_to", "--report-to", dest="report_to")
    parser.add_argument("overrides", nargs="*", help="section.key=value or key=value, e.g. optim.epochs=10 lr=1e-3")
    args = parser.parse_intermixed_args(argv)  # key=value may also follow --resume latest
    values: dict = {}
    try:
        for path in args.config:
            if not Path(path).is_file():
                raise ValueError(f"--config {path}: no such file")
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"--config {path}: expected a mapping of config sections, got {type(loaded).__name__}")
            values.update({resolve_key(k): v for k, v in flatten(loaded).items()})
        command_line = {}
        for item in args.overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not key=value")
            key, value = item.split("=", 1)
            command_line[resolve_key(key)] = yaml.safe_load(value)
        for key in ("data_dir", "output_dir", "split", "report_to"):
            if getattr(args, key) is not None:
                command_line[resolve_key(key)] = getattr(args, key)
        values.update(command_line)
        args.named = set(command_line)  # what a resumed run may change
        sections: dict = {}
        for key, value in values.items():
            section, _, name = key.rpartition(".")
            sections.setdefault(section, {})[name] = _coerce(key, value, DEFAULTS[key])
        base = TrainConfig()
        cfg = TrainConfig(**{s: dataclasses.replace(getattr(base, s), **sections.get(s, {})) for s in SECTIONS},
                          **sections.get("", {}))
        cfg.data.dataset = dataset(cfg.data.dataset).name  # one name per dataset (old spellings: a warning)
    except ValueError as e:
        parser.error(str(e))
    if not cfg.data.data_dir:
        parser.error("--data-dir is required (the dataset's root folder)")
    problem = cfg.problem()
    if problem:
        parser.error(problem)
    return cfg, args


def _coerce(key: str, value, default):
    """Give ``value`` the type of the field's default (YAML 1.1 reads 1e-3 as a string, for one)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, (int, float)) and not isinstance(value, bool):
            number = float(value)
            if isinstance(default, int):
                if number != int(number):
                    raise ValueError
                return int(number)
            return number
        if isinstance(default, tuple):  # fixed length: (height, width), a range, ...
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ValueError
            return tuple(_coerce(key, v, default[0]) for v in value)
        if isinstance(default, list):
            if not isinstance(value, list):
                raise ValueError
            return value
        if isinstance(default, str):
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    kind = f"a list of {len(default)}" if isinstance(default, tuple) else {
        "int": "an integer", "float": "a number", "bool": "true or false", "list": "a list"}.get(
        type(default).__name__, f"a {type(default).__name__}")
    raise ValueError(f"config key {key!r}: expected {kind} like {default!r}, got {value!r}")


def lr_at(optim: OptimConfig, epoch: int) -> float:
    """Step decay: lr * gamma^(number of milestones passed). A constant lr when there are none."""
    return optim.lr * optim.gamma ** sum(epoch >= m for m in optim.milestones)


class CSVTracker(GeneralTracker):
    """A minimal accelerate tracker writing one CSV row per logged step (no extra dependency)."""

    name, requires_logging_directory, main_process_only = "csv", False, True

    def __init__(self, path: Path, keep_until: int = 0) -> None:
        """``keep_until``: the step a resumed run starts after; earlier rows of ``path`` are kept (later
        ones are logged again), a new run (0) starts a new file."""
        super().__init__()
        self.path = path
        self.rows: list[dict] = []
        if keep_until and path.is_file():
            with open(path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= keep_until]

    @property
    def tracker(self):
        return self

    def start(self) -> None:
        pass

    def store_init_configuration(self, values: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.with_suffix(".config.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self.rows.append({"step": step, **values})
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with open(self.path, "w", newline="") as f:  # rewritten whole: new keys may appear later
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)

    def finish(self) -> None:
        pass


class TrainImages(torch.utils.data.Dataset):
    """Resized uint8 images of the prepared Arrow split; augmentation happens on the device.

    With ``cache`` (a file path) every image is decoded and resized once: the first access writes it
    into a uint8 memory-mapped file beside the Arrow data (shared by all workers and processes) and
    later epochs read it from there (SYSU at 384x192: ~7.5 GB of disk).
    """

    def __init__(self, split, size: tuple[int, int], cache: Path | None = None) -> None:
        self.split = split.select_columns(["image", "label", "modality"])
        self.labels, self.modalities = split["label"], split["modality"]
        self.size, self.cache = tuple(size), cache
        self._pixels = self._filled = None  # opened lazily, in each worker
        if cache is not None and not cache.exists():  # sparse: only what is written takes disk
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.truncate(len(self) * (1 + 3 * self.size[0] * self.size[1]))
            os.replace(tmp, cache)  # atomic: no process ever maps a file that is being created

    def __len__(self) -> int:
        return len(self.split)

    def _open_cache(self) -> None:
        shape, n = (3, *self.size), len(self)
        self._filled = np.memmap(self.cache, dtype=np.uint8, mode="r+", shape=(n,))
        self._pixels = np.memmap(self.cache, dtype=np.uint8, mode="r+", shape=(n, *shape), offset=n)

    def __getitem__(self, i: int):
        from torchvision.transforms.v2.functional import pil_to_tensor

        if self.cache is not None and self._pixels is None:
            self._open_cache()
        if self._filled is not None and self._filled[i]:
            image = torch.from_numpy(np.array(self._pixels[i]))
        else:
            image = resize(pil_to_tensor(to_rgb(self.split[i]["image"])), self.size)
            if self._filled is not None:
                self._pixels[i] = image.numpy()
                self._filled[i] = 1  # after the pixels: a reader never sees a half-written image as done
        return image, self.labels[i], self.modalities[i]


def decoded_cache_path(split, size, main_proc: bool) -> Path | None:
    """Where the decoded images of ``split`` at ``size`` live (beside its Arrow files), or None when
    the split has no cache folder or the disk lacks the room."""
    if not split.cache_files:
        return None
    path = Path(split.cache_files[0]["filename"]).parent / f"decoded-{size[0]}x{size[1]}.u8"
    need = len(split) * (1 + 3 * size[0] * size[1])
    if not path.exists() and shutil.disk_usage(path.parent).free < need + (1 << 30):
        if main_proc:
            print(f"not caching decoded images: {need / 2**30:.1f} GiB needed in {path.parent}, "
                  f"{shutil.disk_usage(path.parent).free / 2**30:.1f} GiB free (images are decoded every epoch)")
        return None
    return path


class EpochBatches:
    """The batch sampler of the one DataLoader: this epoch's batches (set before each epoch), so the
    workers persist across epochs and a resumed epoch starts at its own position."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def save_checkpoint(accelerator, ckpt_root: Path, state: dict, keep: int) -> Path | None:
    """save_state into a temporary folder, rename it, then atomically repoint ``latest``: a kill at
    any moment leaves ``latest`` naming a complete checkpoint."""
    name = f"step_{state['global_step']:08d}"
    final, tmp = ckpt_root / name, ckpt_root / f"{name}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every rank writes its own RNG state into tmp before it is renamed
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer = ckpt_root / "latest.tmp"
        pointer.write_text(name)
        os.replace(pointer, ckpt_root / "latest")
        for old in sorted(p for p in ckpt_root.glob("step_*") if not p.name.endswith(".tmp"))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def resolve_resume(output_dir: Path, resume: str) -> Path:
    if resume == "latest":
        pointer = output_dir / "checkpoints" / "latest"
        if not pointer.is_file():
            raise SystemExit(f"--resume latest: no checkpoint in {output_dir / 'checkpoints'} (nothing saved yet?)")
        path = output_dir / "checkpoints" / pointer.read_text().strip()
    else:
        path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise SystemExit(f"--resume: {path} is not a complete checkpoint (no trainer_state.json)")
    return path


@contextlib.contextmanager
def output_lock(out: Path, holder: bool):
    """One run per output folder: ``out/.lock`` holds "pid host" while a run uses it. A second run stops
    at once naming the first; a lock whose process is gone (same host) is taken over, with a message.
    Only the main process (``holder``) takes it."""
    if not holder:
        yield
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SystemExit(f"output_dir {out} is not writable: {e}") from None
    path, me = out / ".lock", f"{os.getpid()} {socket.gethostname()}"
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            text = path.read_text().split() if path.is_file() else []
            pid, host = (int(text[0]), text[1]) if len(text) == 2 and text[0].isdigit() else (None, None)
            alive = pid is not None and host == socket.gethostname() and _pid_alive(pid)
            if pid is None and time.time() - path.stat().st_mtime < 10:
                alive, host = True, "?"  # being written just now
            if alive or (pid is not None and host != socket.gethostname()):
                raise SystemExit(f"output_dir {out} is in use by another run (pid {pid} on host {host}, lock file "
                                 f"{path}); choose another output_dir, or delete the lock if that run is dead") from None
            print(f"taking over the stale lock {path} (pid {pid} is not running)")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    try:
        yield
    finally:
        if path.is_file() and path.read_text() == me:
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> dict:
    cfg, args = load_config(argv)
    with output_lock(Path(cfg.run.output_dir), holder=int(os.environ.get("RANK", "0")) == 0):
        return train(cfg, args)


def train(cfg: TrainConfig, args: argparse.Namespace) -> dict:
    out = Path(cfg.run.output_dir)
    ckpt_root = out / "checkpoints"
    resume_path = resolve_resume(out, args.resume) if args.resume else None
    state = json.loads((resume_path / "trainer_state.json").read_text()) if resume_path else None

    # -- accelerator, trackers, seed -----------------------------------------------------------------
    trackers = []
    if cfg.run.report_to in ("csv", "all"):
        trackers.append(CSVTracker(out / "logs" / "train.csv", keep_until=state["global_step"] if state else 0))
    if cfg.run.report_to not in ("none", "csv"):
        trackers.append(cfg.run.report_to)
    # Several processes on a machine without GPUs (`accelerate launch --multi_gpu --num_processes N`
    # there): one CPU process per rank over gloo. (`accelerate launch --cpu` always starts one process.)
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(log_with=trackers or None, project_dir=str(out), cpu=multi_cpu)
    if trackers:
        accelerator.init_trackers("mcja", config={k: str(v) for k, v in flatten(to_dict(cfg)).items()})
    set_seed(cfg.seed)
    main_proc = accelerator.is_main_process

    # -- data: the prepared Arrow split, PK batches split across processes ----------------------------
    with accelerator.main_process_first():  # the first process prepares the caches, the others reuse them
        split = cfg.data.split if DATASETS[cfg.data.dataset].splits > 1 else None
        train = load_vireid(cfg.data.dataset, cfg.data.data_dir, split=split)["train"]
        cache = decoded_cache_path(train, cfg.model.input_size, main_proc) if cfg.data.cache_decoded else None
        images = TrainImages(train, cfg.model.input_size, cache)
    data_fingerprint = fingerprint(cfg.data.data_dir)  # a resumed run must train on the same files
    num_classes = max(images.labels) + 1
    sampler = PKSampler(images.labels, cfg.data.p, cfg.data.k, modalities=images.modalities,
                        balance_modalities=cfg.data.balance_modalities, seed=cfg.seed,
                        num_replicas=accelerator.num_processes, rank=accelerator.process_index)
    if len(sampler) == 0:
        raise SystemExit(f"no full batch of {cfg.data.p}x{cfg.data.k} per process: lower p / k or use fewer processes")
    # One loader for the whole run: workers persist across epochs and prefetch, batches come in pinned
    # memory and are copied to the GPU without waiting.
    cuda = accelerator.device.type == "cuda"
    batches = EpochBatches()
    workers = {"persistent_workers": True, "prefetch_factor": 4} if cfg.data.num_workers else {}
    loader = torch.utils.data.DataLoader(images, batch_sampler=batches, num_workers=cfg.data.num_workers,
                                         pin_memory=cuda, **workers)

    # -- everything the end of the run needs, checked before its first step ---------------------------
    protocols = None
    if main_proc:
        try:  # evaluation settings and the protocol files (e.g. SYSU's exp/rand_perm_cam.mat)
            protocols = build_protocols(cfg.data.dataset, cfg.data.data_dir, cfg.eval.modes, cfg.eval.shots,
                                        cfg.eval.trials, cfg.data.split)
        except (ValueError, OSError, KeyError, IndexError) as e:
            raise SystemExit(f"the final evaluation would fail (eval.modes={cfg.eval.modes}, eval.shots="
                             f"{cfg.eval.shots}, eval.trials={cfg.eval.trials}): {e}") from None

    # -- model, augmentation, optimizer --------------------------------------------------------------
    model = MCJAModel(dataclasses.replace(cfg.model, num_classes=num_classes))
    augment = TrainAugment(cfg.augment).to(accelerator.device)
    if cfg.run.compile_augment:  # a few fused kernels instead of ~200 small ones (the draw stays outside: a
        # generator breaks the graph)
        augment.apply_uniforms = torch.compile(augment.apply_uniforms, fullgraph=True, dynamic=False)
    trained = [p for p in model.parameters() if p.requires_grad]  # BNNeck bias is frozen at 0
    if cuda:  # channels_last convolutions and one fused Adam kernel: the GPU's fast paths
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(trained, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, fused=cuda)
    model, optimizer = accelerator.prepare(model, optimizer)
    if main_proc:  # a checkpoint holds the weights and Adam's two moments
        need = 3 * sum(t.numel() * t.element_size() for t in model.state_dict().values())
        free = shutil.disk_usage(out).free
        if free < 1.2 * need:
            raise SystemExit(f"not enough disk for a checkpoint in {out}: ~{need / 2**20:.0f} MiB needed, "
                             f"{free / 2**20:.0f} MiB free")

    # -- resume --------------------------------------------------------------------------------------
    start_epoch, start_step, global_step, best = 0, 0, 0, {"R1": -1.0, "epoch": None}
    current, changes = flatten(to_dict(cfg)), []
    if state:
        path = resume_path
        if "model" not in state["config"]:
            raise SystemExit(f"--resume {path}: the checkpoint was written by an older recipe (a flat config); "
                             "this version cannot continue it exactly")
        saved = flatten(state["config"])
        differs = [k for k in saved if k in current and saved[k] != current[k] and k not in RUN_CONTROL]
        fixed = [f"{k}: {saved[k]!r} -> {current[k]!r}" for k in differs if k in RESUME_MUST_MATCH]
        if fixed:
            raise SystemExit(f"--resume {path}: the config differs from the checkpoint's in {fixed}")
        unnamed = [f"{k}: {saved[k]!r} -> {current[k]!r}" for k in differs if k not in args.named]
        if unnamed:
            raise SystemExit(f"--resume {path}: the config differs from the checkpoint's in {unnamed} but the command "
                             "line does not name them; to change them on resume, give them as key=value")
        if state.get("data_fingerprint") not in (None, data_fingerprint):
            raise SystemExit(f"--resume {path}: the data in {cfg.data.data_dir} is not the data the checkpoint was "
                             f"trained on (fingerprint {state['data_fingerprint']} -> {data_fingerprint}: files added, removed "
                             "or modified)")
        changes = state.get("changes", []) + [{"step": state["global_step"], "field": k, "from": saved[k],
                                               "to": current[k]} for k in differs]
        for c in changes[len(state.get("changes", [])):]:
            accelerator.print(f"on resume at step {c['step']}: {c['field']} {c['from']!r} -> {c['to']!r}")
        accelerator.load_state(str(path))
        start_epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        best = state.get("best", best)
        accelerator.print(f"resumed from {path}: epoch {start_epoch + 1}, after step {start_step}")
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))  # a --config file
        accelerator.print(f"{len(train)} training images, {num_classes} identities, {len(sampler)} steps/epoch "
                          f"x {accelerator.num_processes} process(es), batch {cfg.data.p}x{cfg.data.k}, "
                          f"mixed precision: {accelerator.mixed_precision}, device: {accelerator.device}")

    def state_at(epoch: int, step_in_epoch: int) -> dict:
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step, "best": best,
                "config": to_dict(cfg), "data_fingerprint": data_fingerprint, "changes": changes}

    def evaluate_now(tag: str, target=None) -> dict | None:
        """Test-protocol evaluation of ``target`` (default: the model being trained) on the main process;
        the others wait."""
        report = None
        if main_proc:
            target = accelerator.unwrap_model(model) if target is None else target
            report = evaluate(target, cfg.data.dataset, cfg.data.data_dir, split=cfg.data.split, protocols=protocols,
                              num_workers=min(cfg.data.num_workers, 2))
            accelerator.print(f"[{tag}]\n" + format_table(report))
        accelerator.wait_for_everyone()
        return report

    # -- train -----------------------------------------------------------------------------------------
    # The step never waits for the device: the loss terms and a non-finite flag accumulate on it, and
    # are read (check_and_log) every log_every steps, before every checkpoint and at the end. A
    # non-finite loss therefore stops the run before anything after it is saved.
    sums = torch.zeros(4, device=accelerator.device)  # loss, id, cmr, batch cross-modal R1 since the last read
    first_bad = torch.full((), -1, dtype=torch.long, device=accelerator.device)  # global step of the first NaN
    bad_terms = torch.zeros(4, device=accelerator.device)
    window = {"steps": 0, "images": 0, "t0": time.time(), "where": {}}  # "where": global step -> (epoch, step)

    def check_and_log(bar=None) -> None:
        nonlocal sums
        bad = accelerator.gather(first_bad[None])
        if (bad >= 0).any():
            rank = int((bad >= 0).nonzero()[0, 0])
            step = int(bad[rank])
            terms = accelerator.gather(bad_terms[None])[rank].tolist()
            at_epoch, at_step = window["where"].get(step, ("?", "?"))
            last = (ckpt_root / "latest").read_text().strip() if (ckpt_root / "latest").is_file() else None
            raise SystemExit(
                f"non-finite loss at epoch {at_epoch}, step {at_step} (id {terms[1]:.4g}, cmr {terms[2]:.4g}); "
                f"stopped without saving. Last good checkpoint: {ckpt_root / last if last else 'none'}. "
                "Try a lower lr or fp32.")
        if window["steps"]:
            loss, loss_id, loss_cmr, xm_r1 = (sums / window["steps"]).tolist()
            rate = window["images"] / max(time.time() - window["t0"], 1e-9)
            lr = optimizer.param_groups[0]["lr"]
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}", id=f"{loss_id:.3f}", cmr=f"{loss_cmr:.3f}", xm_r1=f"{xm_r1:.2f}",
                                lr=f"{lr:.2e}", img_s=f"{rate:.0f}")
            if trackers:
                accelerator.log({"loss": loss, "loss_id": loss_id, "loss_cmr": loss_cmr, "batch_cross_modal_r1": xm_r1,
                                 "lr": lr, "epoch": epoch + 1, "images_per_s": rate}, step=global_step)
        sums = torch.zeros_like(sums)
        window.update(steps=0, images=0, t0=time.time(), where={})

    stop = False
    for epoch in range(start_epoch, cfg.optim.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg.optim, epoch)
        sampler.set_epoch(epoch)
        epoch_batches = list(sampler)  # epochs differ in length: positions index this epoch's own list
        steps_this_epoch = len(epoch_batches)
        step_in_epoch = start_step if epoch == start_epoch else 0
        batches.batches = epoch_batches[step_in_epoch:]
        model.train()
        bar = tqdm(total=steps_this_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
                   disable=not main_proc, unit="step")
        for x, y, m in loader:
            x, y, m = (t.to(accelerator.device, non_blocking=True) for t in (x, y, m))
            # Augmentation randomness derives from (seed, epoch, step, rank): a resumed run replays it exactly.
            g = torch.Generator(device=accelerator.device).manual_seed(
                hash((cfg.seed, epoch, step_in_epoch, accelerator.process_index)) % 2**62)
            x = augment(x, m, g)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with accelerator.autocast():
                output = model(x)
                loss_id = id_loss(output.logits, y, cfg.loss.label_smoothing)
                loss_cmr = (cmr_loss(output.embeddings, y, m, eps=cfg.loss.cmr_eps) if cfg.loss.cmr_weight
                            else loss_id * 0)
                loss = cfg.loss.id_weight * loss_id + cfg.loss.cmr_weight * loss_cmr
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            step_in_epoch += 1
            terms = torch.stack([loss, loss_id, loss_cmr]).detach()  # (+ how well the batch retrieves across modalities)
            new_bad = (first_bad < 0) & ~torch.isfinite(terms).all()
            terms = torch.cat([terms, cross_modal_rank1(output.embeddings, y, m)[None]])
            first_bad = torch.where(new_bad, global_step, first_bad)
            bad_terms = torch.where(new_bad, terms, bad_terms)
            sums += terms
            window["where"][global_step] = (epoch + 1, step_in_epoch)
            window["steps"] += 1
            window["images"] += len(x) * accelerator.num_processes
            bar.update()
            checkpoint_now = cfg.run.save_every_steps and global_step % cfg.run.save_every_steps == 0
            if global_step % cfg.run.log_every == 0 or checkpoint_now:
                check_and_log(bar)
            if checkpoint_now and step_in_epoch < steps_this_epoch:
                save_checkpoint(accelerator, ckpt_root, state_at(epoch, step_in_epoch), cfg.run.keep_checkpoints)
            if cfg.run.max_steps and global_step >= cfg.run.max_steps:
                stop = True
                break
        bar.close()
        check_and_log()
        if step_in_epoch == steps_this_epoch:  # a finished epoch: the next run starts at the next one
            if cfg.eval.select_best:
                report = evaluate_now(f"epoch {epoch + 1}: test-set evaluation for best-R1 selection")
                if main_proc:
                    r1 = next(iter(report["results"].values()))["R1"]
                    if r1 > best["R1"]:
                        best = {"R1": r1, "epoch": epoch + 1}
                        accelerator.unwrap_model(model).save_pretrained(out / "best-model")
            save_checkpoint(accelerator, ckpt_root, state_at(epoch + 1, 0), cfg.run.keep_checkpoints)
        elif not (cfg.run.save_every_steps and global_step % cfg.run.save_every_steps == 0):  # not saved just now
            save_checkpoint(accelerator, ckpt_root, state_at(epoch, step_in_epoch), cfg.run.keep_checkpoints)
        if stop:
            break

    # -- release artefact: model folder + evaluation + card ----------------------------------------------
    finished = not stop or (epoch == cfg.optim.epochs - 1 and step_in_epoch == steps_this_epoch)
    final_model = accelerator.unwrap_model(model)
    selection = "last checkpoint"
    if cfg.eval.select_best and main_proc and (out / "best-model").is_dir():
        final_model = MCJAModel.from_pretrained(out / "best-model").to(accelerator.device)
        selection = f"best test-set Rank-1 over epochs (epoch {best['epoch']}; released-code behaviour)"
    report = evaluate_now(f"final evaluation, {selection}", final_model) if finished else None
    synthetic = cfg.data.synthetic or synthetic_marker(cfg.data.data_dir) is not None  # the generator's marker too
    if main_proc:
        folder = out / "model"
        final_model.save_pretrained(folder)
        optim = cfg.optim
        training = {
            "dataset": cfg.data.dataset, "data": "synthetic data in its layout (mcja synth)" if synthetic else "the benchmark's",
            "epochs": f"{optim.epochs} ({global_step} steps of {cfg.data.p}x{cfg.data.k})"
                      + ("" if finished else " - stopped early"),
            "optimizer": f"Adam, lr {optim.lr} (x{optim.gamma} at epochs {optim.milestones}), "
                         f"weight decay {optim.weight_decay}",
            "losses": f"ID (cross-entropy) x{cfg.loss.id_weight} + CMR (eps {cfg.loss.cmr_eps}) x{cfg.loss.cmr_weight}",
            "augmentation": "modality alignment augmentation" + (" (released-code cutmix box)" if cfg.augment.cutmix_faithful else "")
            if cfg.augment.maa_p else "no MAA (flip, crop, erasing only)",
            "initialisation": f"{cfg.model.backbone} ImageNet weights" if cfg.model.pretrained_backbone else "random",
            "mixed precision": accelerator.mixed_precision, "processes": accelerator.num_processes,
            "seed": cfg.seed, "model_selection": selection,
        }
        if changes:
            training["changed on resume"] = "; ".join(f"{c['field']} {c['from']} -> {c['to']} at step {c['step']}"
                                                      for c in changes)
        if report:
            (out / "results.json").write_text(json.dumps(report, indent=2))
        write_model_card(folder, report, training,
                         data_label=f"synthetic {cfg.data.dataset} layout (mcja synth)" if synthetic else None)
        accelerator.print(f"model folder: {folder}")
    accelerator.end_training()
    return {"report": report, "global_step": global_step, "output_dir": str(out)}


if __name__ == "__main__":
    main()
