import os

# Tests never touch the network; set before huggingface_hub is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

TRAIN_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "train.py"


def load_recipe():
    """recipes/train.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("mcja_train_recipe", TRAIN_RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every float tensor (incl. BN running stats and the zero-init MDA BNs) non-trivial values,
    so that a load that skips or mixes up any tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("bn_neck.bias"):
                continue  # frozen at zero by design
            else:
                t.add_(0.05 * torch.randn(t.shape, generator=g))
    return model


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """Small synthetic datasets in each official layout (generated once per test session)."""
    from mcja_hub.data import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    return {
        "sysu": generate_synthetic(root / "SYSU-MM01", "sysu_mm01", ids=20, seed=3, workers=2),
        "regdb": generate_synthetic(root / "RegDB", "regdb", ids=10, seed=3, workers=2),
        "llcm": generate_synthetic(root / "LLCM", "llcm", ids=12, seed=3, workers=2),
    }
