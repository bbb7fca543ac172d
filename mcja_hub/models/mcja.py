"""MCJA model: a timm CNN trunk (+ optional MDA modules) -> GeM -> BNNeck -> bias-free classifier.

docs/method.md §2. Order follows timm: config -> building blocks -> model -> ``_create_mcja`` -> entry points.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import timm
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from timm.models import register_model
from torch import nn

from .card import model_card

# Fields of config.json that are timm's, not MCJAConfig's: timm reads them for "hf-hub:" model names.
TIMM_FIELDS = ("architecture", "num_features", "pretrained_cfg")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")

@dataclass
class MCJAConfig:
    """Everything needed to rebuild the network and to feed it correctly (stored as config.json)."""

    backbone: str = "resnet50"  # any timm CNN; "resnet50.tv_in1k" picks torchvision's V1 ImageNet weights
    pretrained_backbone: bool = False  # ImageNet init through timm; only honoured at construction for training
    num_classes: int = 0  # training identities; 0 = embedding-only model (no classifier)
    last_stride: int = 2  # 2 as released (12x6 map at 384x192); 1 = the usual re-id "last stride 1"
    gem_p: float = 3.0  # fixed (not learned) GeM exponent
    # Number of MDA modules after the *last* blocks of each ResNet stage; MCJA (TCSVT) uses (0, 2, 3, 0).
    mda_layers: tuple[int, int, int, int] = (0, 0, 0, 0)
    mda_m: int = 2  # MDA attention maps: 2 for SYSU-MM01, 12 for RegDB
    # Preprocessing travels with the weights so a checkpoint cannot be fed the wrong normalisation.
    input_size: tuple[int, int] = (384, 192)  # (height, width)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        # JSON turns tuples into lists; normalise so configs compare equal after a round trip.
        self.mda_layers = tuple(int(n) for n in self.mda_layers)
        self.input_size = tuple(int(s) for s in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        checks = [
            (self.last_stride in (1, 2), "last_stride", "1 or 2"),
            (self.num_classes >= 0, "num_classes", ">= 0"),
            (self.gem_p > 0, "gem_p", "> 0"),
            (len(self.mda_layers) == 4 and min(self.mda_layers) >= 0, "mda_layers", "4 non-negative counts"),
            (self.mda_m >= 1, "mda_m", ">= 1"),
            (len(self.input_size) == 2 and min(self.input_size) > 0, "input_size", "(height, width) > 0"),
            (len(self.mean) == 3 and len(self.std) == 3 and min(self.std) > 0, "mean/std", "3 values, std > 0"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"MCJAConfig.{name} must be {expected}, got {getattr(self, name.split('/')[0])!r}")

    @property
    def use_mda(self) -> bool:
        return any(self.mda_layers)

    # A saved model must say how to feed it: defaults here would silently pair weights with the wrong input.
    REQUIRED_IN_FILES = ("backbone", "input_size", "mean", "std")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config", required: tuple[str, ...] = ()) -> "MCJAConfig":
        """Strict parse: an unknown field means the file belongs to another model or version; every value
        must have its field's type; ``required`` fields must be present."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object of MCJAConfig fields, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in TIMM_FIELDS}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{source}: unknown MCJAConfig field(s) {unknown}; known fields: {sorted(fields)}")
        absent = [name for name in required if name not in data]
        if absent:
            raise ValueError(f"{source}: missing field(s) {absent} (the model's preprocessing is part of its config)")
        for name, value in data.items():
            expected = _field_type_problem(fields[name].default, value)
            if expected:
                raise ValueError(f"{source}: field {name!r} must be {expected}, got {value!r}")
        return cls(**data)


def _field_type_problem(default: Any, value: Any) -> str | None:
    """What ``value`` should have been, judged by the field's default (None when it fits)."""
    def number(v, integer):
        return not isinstance(v, bool) and (isinstance(v, int) if integer else isinstance(v, (int, float)))

    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        integer = isinstance(default, int)
        return None if number(value, integer) else ("an integer" if integer else "a number")
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    if isinstance(default, tuple):
        integer = isinstance(default[0], int)
        ok = isinstance(value, (list, tuple)) and len(value) == len(default) and all(number(v, integer) for v in value)
        return None if ok else f"a list of {len(default)} {'integers' if integer else 'numbers'}"
    return None


# ----------------------------------------------------------------------------------------------------
# Building blocks


class MDA(nn.Module):
    """Modality Distribution Adapter (docs/method.md §2): attention-pooled channel gate, residual, identity at init."""

    def __init__(self, channels: int, m: int = 2) -> None:
        super().__init__()
        self.sc_conv = nn.Conv2d(channels, m, kernel_size=1)  # M spatial attention maps (with bias)
        self.ca_conv = nn.Conv1d(channels, channels, kernel_size=m, groups=channels, bias=False)
        self.ca_bn = nn.BatchNorm1d(channels)
        self.norm_bn = nn.BatchNorm2d(channels)
        # gamma = beta = 0: the residual branch is zero, so inserting MDA does not change a trained trunk.
        nn.init.zeros_(self.norm_bn.weight)
        nn.init.zeros_(self.norm_bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.sc_conv(x).flatten(2).softmax(dim=-1)  # (B, M, N): softmax over positions
        context = torch.einsum("bmn,bcn->bcm", attn, x.flatten(2))  # (B, C, M) context vectors
        gate = torch.sigmoid(self.ca_bn(self.ca_conv(context).squeeze(-1)))  # (B, C)
        return x + self.norm_bn(x * gate[:, :, None, None])


class GeM(nn.Module):
    """Generalised-mean pooling with a fixed exponent, in fp32 (x**3 overflows/underflows in fp16)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-12) -> None:
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            # clamp: a no-op after ReLU, but keeps the root real for trunks ending in a signed activation
            x = x.float().clamp_min(0).pow(self.p).mean(dim=(-2, -1))
            return (x + self.eps).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, eps={self.eps}"


class BNNeck(nn.BatchNorm1d):
    """BatchNorm1d whose bias is frozen at 0 (the re-id BNNeck)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.bias.requires_grad_(False)


class MCJAOutput(NamedTuple):
    embeddings: torch.Tensor  # post-BNNeck features (not normalised), (B, num_features)
    logits: torch.Tensor | None  # identity logits, (B, num_classes); None for an embedding-only model


def _create_backbone(name: str, pretrained: bool) -> nn.Module:
    if not timm.is_model(name):
        arch = name.split(".")[0]
        close = timm.list_models(f"*{arch[:6]}*")[:10]
        raise ValueError(f"unknown timm backbone {name!r}; similar names: {close or 'none'}")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="")
    except Exception as e:  # timm raises many types for missing weights (offline, no cache, ...)
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not load ImageNet weights for backbone {name!r} ({type(e).__name__}: {e}). "
            "They come from the Hugging Face Hub: go online once or fill the HF cache, "
            "or set pretrained_backbone=False."
        ) from e


def _set_last_stride_1(backbone: nn.Module) -> None:
    """Plain stride change on the last stage (not timm's output_stride, which dilates instead)."""
    last = backbone.feature_info[-1]["module"]
    changed = 0
    for name, mod in backbone.get_submodule(last).named_modules():
        if isinstance(mod, nn.Conv2d) and mod.stride == (2, 2):
            mod.stride = (1, 1)
            changed += 1
        elif isinstance(mod, nn.AvgPool2d) and mod.stride in (2, (2, 2)):  # ResNet-D style shortcut pool
            parent, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(f"{last}.{parent}" if parent else last), child, nn.Identity())
            changed += 1
    if not changed:
        raise ValueError(f"last_stride=1: found no stride-2 conv/pool in the last stage {last!r} of the backbone")


# ----------------------------------------------------------------------------------------------------
# Model


class MCJAModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="mcja-hub",
    license="mit",
    pipeline_tag="image-feature-extraction",
    tags=["person-reid", "visible-infrared", "cross-modality", "image-retrieval", "mcja"],
    repo_url="https://github.com/workingcoder/MCJA",
    paper_url="https://arxiv.org/abs/2307.08316",
):
    """Global-feature VI-ReID model of MCJA. ``forward`` returns ``MCJAOutput(embeddings, logits)``."""

    def __init__(self, config: MCJAConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MCJAConfig()
        self.backbone = _create_backbone(config.backbone, config.pretrained_backbone)
        if config.last_stride == 1:
            _set_last_stride_1(self.backbone)
        self.mda = self._build_mda(config) if config.use_mda else None
        self.num_features = self.backbone.num_features
        self.pool = GeM(config.gem_p)
        self.bn_neck = BNNeck(self.num_features)
        self.num_classes = 0
        self.classifier: nn.Linear | None = None
        self.reset_classifier(config.num_classes)
        # timm.data.resolve_model_data_config(model) reads this.
        self.pretrained_cfg = {
            "input_size": (3, *config.input_size),
            "mean": config.mean,
            "std": config.std,
            "interpolation": config.interpolation,
        }

    def _build_mda(self, config: MCJAConfig) -> nn.ModuleDict:
        missing = [s for s in RESNET_STAGES if not isinstance(getattr(self.backbone, s, None), nn.Sequential)]
        if missing or not hasattr(self.backbone, "conv1"):
            raise ValueError(
                f"MDA needs a ResNet-style backbone (conv1 + layer1..layer4 of blocks); {config.backbone!r} "
                f"lacks {missing or ['conv1']}. Use mda_layers=(0, 0, 0, 0) with this backbone."
            )
        widths = {info["module"]: info["num_chs"] for info in self.backbone.feature_info}
        mda = nn.ModuleDict()
        for stage, count in zip(RESNET_STAGES, config.mda_layers):
            blocks = getattr(self.backbone, stage)
            if count > len(blocks):
                raise ValueError(f"mda_layers asks for {count} MDA modules in {stage}, which has {len(blocks)} blocks")
            if count:
                mda[stage] = nn.ModuleList(MDA(widths[stage], config.mda_m) for _ in range(count))
        return mda

    # timm-style API ---------------------------------------------------------------------------------

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.config.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes, bias=False) if num_classes > 0 else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled final feature map, (B, C, H/32, W/32) with last stride 2."""
        if self.mda is None:
            return self.backbone.forward_features(x)
        b = self.backbone
        x = b.maxpool(b.act1(b.bn1(b.conv1(x))))
        for stage in RESNET_STAGES:
            blocks = getattr(b, stage)
            adapters = self.mda[stage] if stage in self.mda else []
            first = len(blocks) - len(adapters)  # MDA follows each of the last len(adapters) blocks
            for i, block in enumerate(blocks):
                x = block(x)
                if i >= first:
                    x = adapters[i - first](x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        embeddings = self.bn_neck(self.pool(x))
        if pre_logits:
            return embeddings
        if self.classifier is None:
            raise RuntimeError("this model has no classifier (num_classes=0); use pre_logits=True or embed()")
        return self.classifier(embeddings)

    def forward(self, x: torch.Tensor) -> MCJAOutput:
        embeddings = self.forward_head(self.forward_features(x), pre_logits=True)
        logits = self.classifier(embeddings) if self.classifier is not None else None
        return MCJAOutput(embeddings, logits)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """L2-normalised post-BNNeck embeddings in eval mode, (B, num_features).

        ``images``: a float tensor already resized and normalised as ``self.config`` says
        (``mcja_hub.augment`` builds that pipeline), on any device.
        """
        if not torch.is_floating_point(images) or images.ndim != 4:
            raise TypeError(f"embed() expects a float (B, 3, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            out = [self.forward_head(self.forward_features(chunk.to(device)), pre_logits=True).float()
                   for chunk in images.split(batch_size)]
            return F.normalize(torch.cat(out), dim=1)
        finally:
            self.train(was_training)

    # Hub loading: strict, safetensors only ---------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
        **config_overrides: Any,
    ) -> "MCJAModel":
        """Load a model folder or Hub repo (``config.json`` + ``model.safetensors``), strictly.

        Unlike the mixin's default this never reads pickles, never downloads ImageNet weights, and
        fails naming every missing, unexpected or mis-shaped tensor instead of loading partially.
        """
        src = str(pretrained_model_name_or_path)

        def resolve(filename: str) -> str:
            if os.path.isdir(src):
                path = os.path.join(src, filename)
                if not os.path.isfile(path):
                    hint = " (a .pth checkpoint? convert it with `mcja convert`)" if filename == WEIGHTS_NAME else ""
                    raise FileNotFoundError(f"{path} not found: a model folder needs {CONFIG_NAME} and {WEIGHTS_NAME}{hint}")
                return path
            try:
                return hf_hub_download(src, filename, revision=revision, cache_dir=cache_dir, token=token,
                                       force_download=force_download, local_files_only=local_files_only)
            except (EntryNotFoundError, LocalEntryNotFoundError) as e:
                raise FileNotFoundError(f"{filename} not found for {src!r} (revision {revision or 'main'}): {e}") from e

        config_path = resolve(CONFIG_NAME)
        try:
            with open(config_path, encoding="utf-8") as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{config_path}: not a valid JSON config ({e})") from None
        if isinstance(data, dict):
            data.update(config_overrides)
        # Never fetch ImageNet weights here: the checkpoint overwrites every tensor anyway.
        config = MCJAConfig.from_dict(data, source=config_path, required=MCJAConfig.REQUIRED_IN_FILES)
        config = dataclasses.replace(config, pretrained_backbone=False)
        model = cls(config)
        model.load_safetensors(resolve(WEIGHTS_NAME), map_location=map_location)
        model.config.pretrained_backbone = bool(data.get("pretrained_backbone", False))  # keep the record
        return model.eval()

    def load_safetensors(self, path: str | Path, map_location: str | torch.device = "cpu") -> None:
        """Strictly load a safetensors state dict, naming every mismatch."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device=str(map_location))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
        self.load_checked(state, str(path))
        self.to(map_location)

    def load_checked(self, state: dict[str, torch.Tensor], source: str) -> None:
        """``load_state_dict(strict=True)`` after naming every mismatch of ``state`` (from ``source``): missing,
        unexpected, mis-shaped, integer-for-float and non-finite tensors."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
        # floating tensors may come in another float precision; integers for floats (or back) are a mix-up
        dtypes = [f"{k}: checkpoint {state[k].dtype} vs model {own[k].dtype}" for k in own
                  if k in state and state[k].is_floating_point() != own[k].is_floating_point()]
        non_finite = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if missing or unexpected or shapes or dtypes or non_finite:
            lines = [f"{source} does not match the model built from its config ({self.config.backbone}, "
                     f"num_classes={self.num_classes}, mda_layers={self.config.mda_layers}, mda_m={self.config.mda_m}):"]
            for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes),
                                 ("dtype mismatch", dtypes), ("non-finite values (NaN / inf)", non_finite)):
                if items:
                    lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else ""))
            raise ValueError("\n".join(lines))
        self.load_state_dict(state, strict=True)

    def generate_model_card(self, *args: Any, **kwargs: Any):
        """The card ``save_pretrained`` writes when the folder has none (results come later: ``mcja card``)."""
        return model_card(self.config, self.num_features, repo_id=kwargs.get("repo_id"))

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        weights = Path(save_directory) / WEIGHTS_NAME
        save_model(self, str(weights))
        # safetensors writes 0600 whatever the umask; a published model folder is readable like its other files
        umask = os.umask(0)
        os.umask(umask)
        weights.chmod(0o666 & ~umask)
        # config.json is written here (not by the mixin) so it always reflects reset_classifier() etc.; the
        # timm fields let `timm.create_model("hf-hub:<repo>", pretrained=True)` load the folder too.
        config = {**asdict(self.config), **timm_fields(self.config, self.num_features)}
        (Path(save_directory) / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))


# ----------------------------------------------------------------------------------------------------
# timm registration


def timm_fields(config: MCJAConfig, num_features: int) -> dict[str, Any]:
    """timm's view of a saved model (TIMM_FIELDS): which registered name builds it and how to feed it."""
    return {
        "architecture": "mcja_resnet50_mda" if config.use_mda else "mcja_resnet50",
        "num_features": num_features,
        "pretrained_cfg": {"input_size": [3, *config.input_size], "mean": list(config.mean), "std": list(config.std),
                           "interpolation": config.interpolation, "crop_pct": 1.0, "crop_mode": "center",
                           "num_classes": config.num_classes, "first_conv": "backbone.conv1",
                           "classifier": "classifier", "license": "mit"},
    }


def _create_mcja(variant: str, pretrained: bool, defaults: dict[str, Any], **kwargs: Any) -> MCJAModel:
    """``pretrained=True`` loads MCJA weights: the mcja-hub model folder on the Hub that the pretrained
    config names (``timm.create_model("hf-hub:<repo>", pretrained=True)``, or ``pretrained_cfg_overlay=
    dict(hf_hub_id=...)``). ImageNet initialisation of the trunk is ``pretrained_backbone=True``."""
    cfg = kwargs.pop("pretrained_cfg", None)  # a dict, timm's PretrainedCfg, or a name tag (none are defined)
    cfg = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg if isinstance(cfg, dict) else {}
    cfg = {**cfg, **(kwargs.pop("pretrained_cfg_overlay", None) or {})}
    cache_dir = kwargs.pop("cache_dir", None)
    kwargs.pop("pretrained_model_args", None)
    if pretrained:
        hub_id = cfg.get("hf_hub_id")
        if not hub_id:
            raise ValueError(f"{variant}: pretrained=True loads MCJA weights from an mcja-hub model repo, and none is "
                             f"published for {variant}: use timm.create_model('hf-hub:<repo>', pretrained=True), or "
                             "pretrained_backbone=True for an ImageNet-initialised trunk")
        repo, _, revision = hub_id.partition("@")
        model = MCJAModel.from_pretrained(repo, revision=revision or None, cache_dir=cache_dir)
        if "num_classes" in kwargs and kwargs["num_classes"] != model.num_classes:  # timm's new-head idiom
            model.reset_classifier(kwargs.pop("num_classes"))
        asked = MCJAConfig.from_dict({**asdict(model.config), **kwargs}, source=f"timm.create_model({variant!r})")
        different = [k for k in kwargs if getattr(asked, k) != getattr(model.config, k)]
        if different:
            raise ValueError(f"{variant}: {different} differ from the loaded model's config ({hub_id}); "
                             "a pretrained model is built from its own config.json")
        model.pretrained_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}  # timm's types
        return model
    if kwargs.pop("features_only", False):
        raise ValueError(f"{variant}: features_only is not supported; use model.forward_features()")
    if kwargs.pop("in_chans", 3) != 3:
        raise ValueError(f"{variant}: only in_chans=3 is supported (IR images are replicated to 3 channels)")
    kwargs = {**defaults, **kwargs}
    return MCJAModel(MCJAConfig.from_dict(kwargs, source=f"timm.create_model({variant!r})"))


@register_model
def mcja_resnet50(pretrained: bool = False, **kwargs: Any) -> MCJAModel:
    """MCJA global-feature baseline (arXiv v1): ResNet-50, GeM p=3, BNNeck, no MDA."""
    return _create_mcja("mcja_resnet50", pretrained, {"backbone": "resnet50"}, **kwargs)


@register_model
def mcja_resnet50_mda(pretrained: bool = False, **kwargs: Any) -> MCJAModel:
    """MCJA (TCSVT): ResNet-50 with MDA after layer2 blocks 2-3 and layer3 blocks 3-5."""
    return _create_mcja("mcja_resnet50_mda", pretrained, {"backbone": "resnet50", "mda_layers": (0, 2, 3, 0)}, **kwargs)
