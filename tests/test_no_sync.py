"""The training step is built for the GPU: it never waits for the device, and its number of tensor ops
does not grow with the batch size.

On the CPU nothing is slow about a host sync, so these tests look at what a sync needs instead: the
aten ops that copy a device value to the host (``_local_scalar_dense`` behind ``.item()`` / ``bool()``,
ops with data-dependent output shapes) and the Python-side conversions of tensors (on the CPU
``.tolist()`` and ``.numpy()`` dispatch no aten op at all, so they are counted by patching).
"""

import collections
import contextlib

import torch
from conftest import load_recipe
from torch.utils._python_dispatch import TorchDispatchMode

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.augment import AugmentConfig, TrainAugment
from mcja_hub.losses import cmr_loss, id_loss

SYNC_OPS = ("aten._local_scalar_dense", "aten.nonzero", "aten.unique", "aten._unique", "aten.masked_select")
CONVERSIONS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")
SIZE = (64, 32)


PAUSED = []  # non-empty while the counters look away


class OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not PAUSED:
            self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def conversions():
    """Count calls of the Tensor methods that hand a value to Python."""
    counts = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in CONVERSIONS}

    def counting(name, original):
        def method(self, *args, **kwargs):
            counts[name] += not PAUSED
            return original(self, *args, **kwargs)
        return method

    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def syncs(ops):
    return {op: n for op, n in ops.items() if op.startswith(SYNC_OPS)}


def training_step(batch: int):
    """augment + forward + ID/CMR losses + backward of a tiny MCJA model, ops and conversions counted."""
    torch.manual_seed(0)
    model = MCJAModel(MCJAConfig(backbone="resnet18", num_classes=8, mda_layers=(0, 1, 1, 0), input_size=SIZE))
    augment = TrainAugment(AugmentConfig(size=SIZE, pad=2))
    x = torch.randint(0, 256, (batch, 3, *SIZE), dtype=torch.uint8)
    pids = torch.arange(batch) // 4 % 8
    modality = torch.arange(batch) % 3 // 2  # 2:1 visible:infrared, each id in both
    generator = torch.Generator().manual_seed(1)
    with OpCounter() as counter, conversions() as converted:
        out = model(augment(x, modality, generator))
        loss = id_loss(out.logits, pids) + cmr_loss(out.embeddings, pids, modality)
        loss.backward()
    return counter.ops, converted


def test_training_step_has_no_host_sync_and_a_constant_op_count():
    small_ops, small_conv = training_step(16)
    large_ops, large_conv = training_step(64)
    assert syncs(small_ops) == {} and syncs(large_ops) == {}
    assert sum(small_conv.values()) == 0 and sum(large_conv.values()) == 0, (small_conv, large_conv)
    assert small_ops == large_ops  # not one op more for a larger batch: no loop over images


def test_the_counters_see_what_they_look_for():
    # the same counters on code that does sync: each kind is caught
    x = torch.arange(6.0)
    with OpCounter() as counter, conversions() as converted:
        x.nonzero()
        x[x > 2]
        x.unique()
        float(x.sum())
        x.tolist()
        bool(x[0])
    assert set(syncs(counter.ops)) >= {"aten.nonzero", "aten._local_scalar_dense", "aten._unique2"}
    assert converted["tolist"] == 1 and converted["__float__"] == 1 and converted["__bool__"] == 1


def test_recipe_reads_device_values_only_when_logging(synthetic, tmp_path, monkeypatch):
    """Ops that read a device value, counted over whole recipe runs of 2 and of 6 steps (no logging or
    checkpoint in between): the 4 steps more add none. (Adam's own step is not counted: with fused=True,
    as on the GPU, it reads nothing either.)"""
    recipe = load_recipe()
    step = torch.optim.Adam.step

    def uncounted_step(self, *args, **kwargs):  # Adam's CPU step counters are read with .item() by design
        PAUSED.append(True)
        try:
            return step(self, *args, **kwargs)
        finally:
            PAUSED.pop()

    monkeypatch.setattr(torch.optim.Adam, "step", uncounted_step)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    args = ["--data-dir", str(synthetic["sysu"]), "backbone=resnet18", f"input_size=[{SIZE[0]},{SIZE[1]}]",
            "mda_layers=[0,1,1,0]", "p=4", "k=4", "num_workers=0", "pretrained_backbone=false", "epochs=1",
            "log_every=1000", "pad=2"]
    recipe.main(args + [f"output_dir={tmp_path / 'warm'}", "max_steps=6"])  # fills the data caches
    counts = []
    for steps in (2, 6):
        with OpCounter() as counter, conversions() as converted:
            recipe.main(args + [f"output_dir={tmp_path / str(steps)}", f"max_steps={steps}"])
        counts.append((syncs(counter.ops), converted))
    assert counts[0] == counts[1], counts
