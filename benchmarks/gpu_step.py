"""The training step on a GPU: MCJA vs a plain timm ResNet-50 + cross-entropy step, augmentation alone,
kernels per augmentation call, and the recipe's steady-state throughput. Prints one JSON object.

Both steps get the same speed-ups: bf16 autocast, channels_last, fused Adam, batch 128 at 384x192
(the released 8 x 16). Timings are CUDA-synchronised, in interleaved rounds (common.timed_interleaved).
The MCJA step is what recipes/train.py does per step on a uint8 batch already on the GPU: TrainAugment,
ResNet-50 with 5 MDA modules, GeM, BNNeck, ID + CMR loss, backward, Adam; the plain step runs timm's
resnet50 on an already-normalised batch. ``recipe_*`` runs ``recipes/train.py`` (sysu.yaml, random init,
synthetic data at 384x192 written first) and reads its logged images/s after the first window.

    python benchmarks/gpu_step.py                # on a CUDA machine
    python benchmarks/gpu_step.py --smoke        # tiny sizes on the CPU: checks the script, measures nothing
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.augment import AugmentConfig, TrainAugment
from mcja_hub.losses import cmr_loss, id_loss
from common import timed_interleaved

ROOT = Path(__file__).resolve().parents[1]


def kernels_per_call(fn, device) -> int | None:
    """Device kernels launched by one ``fn()`` (torch.profiler); None on the CPU."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")


def recipe_throughput(device, size, batch, steps: int) -> dict:
    """Steady-state images/s of recipes/train.py on synthetic data (logged every 10 steps)."""
    from mcja_hub.data import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        data = generate_synthetic(Path(tmp) / "sysu", "sysu_mm01", ids=60, seed=0, size=size,
                                  images_per_camera=(8, 16) if batch >= 128 else (3, 5))
        p, k = (8, 16) if batch >= 128 else (2, 4)
        args = ["--config", str(ROOT / "recipes/configs/sysu.yaml"), "--data-dir", str(data),
                f"output_dir={tmp}/run", "pretrained_backbone=false", f"input_size=[{size[0]},{size[1]}]", f"p={p}", f"k={k}",
                f"max_steps={steps}", "log_every=10", "report_to=csv", "num_workers=8", "synthetic=true"]
        if device.type != "cuda":
            args += ["backbone=resnet18", "mda_layers=[0,1,1,0]", "num_workers=0", "pad=2"]
        launch = ([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--mixed_precision", "bf16"]
                  if device.type == "cuda" else [sys.executable])
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=f"{tmp}/hf")
        proc = subprocess.run([*launch, str(ROOT / "recipes/train.py"), *args], capture_output=True, text=True, env=env)
        if proc.returncode:
            return {"recipe_error": proc.stderr[-2000:]}
        rows = list(csv.DictReader(open(f"{tmp}/run/logs/train.csv")))
        rates = [float(r["images_per_s"]) for r in rows[1:]]  # after the first window (start-up, cudnn tuning)
        return {"recipe_images_per_s": round(sum(rates) / max(len(rates), 1), 1), "recipe_windows": len(rates)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: check that the script runs")
    parser.add_argument("--recipe-steps", type=int, default=80)
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu_step.py measures the training step on a CUDA GPU and none is available "
                         "here (run it with --smoke to check the script on the CPU)")
    device = torch.device("cpu" if args.smoke else "cuda")
    batch, size, ids = (16, (64, 32), 8) if args.smoke else (128, (384, 192), 395)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, *size), dtype=torch.uint8, device=device)
    labels = (torch.arange(batch, device=device) // 16) % ids  # 8 identities x 16 images
    modality = (torch.arange(batch, device=device) % 3 == 2).long()
    augment = TrainAugment(AugmentConfig(size=size)).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    amp = torch.autocast(device.type, dtype=torch.bfloat16)
    fmt = torch.channels_last

    config = MCJAConfig(num_classes=ids, mda_layers=(0, 2, 3, 0), input_size=size)
    mcja = MCJAModel(config).to(device, memory_format=fmt).train()
    opt_m = torch.optim.Adam([p for p in mcja.parameters() if p.requires_grad], lr=3.5e-4, weight_decay=5e-4,
                             fused=cuda)
    plain = timm.create_model("resnet50", num_classes=ids).to(device, memory_format=fmt).train()
    opt_p = torch.optim.Adam(plain.parameters(), lr=3.5e-4, weight_decay=5e-4, fused=cuda)
    normalised = augment(images, torch.ones_like(modality), gen).contiguous(memory_format=fmt)

    def synced(fn):
        def run():
            fn()
            if cuda:
                torch.cuda.synchronize()
        return run

    def augment_only():
        augment(images, modality, gen)

    def mcja_step():
        x = augment(images, modality, gen).contiguous(memory_format=fmt)
        with amp:
            out = mcja(x)
            loss = id_loss(out.logits, labels) + cmr_loss(out.embeddings, labels, modality)
        loss.backward()
        opt_m.step()
        opt_m.zero_grad(set_to_none=True)

    def plain_step():
        with amp:
            loss = F.cross_entropy(plain(normalised).float(), labels)
        loss.backward()
        opt_p.step()
        opt_p.zero_grad(set_to_none=True)

    compiled = torch.compile(augment.apply_uniforms, fullgraph=True, dynamic=False) if cuda else None
    uniforms = torch.rand(batch, augment.num_uniforms, device=device, generator=gen)

    def augment_compiled():
        compiled(images, modality, uniforms)

    repeats = 3 if args.smoke else 20
    t_aug, t_plain, t_mcja = timed_interleaved(synced(augment_only), synced(plain_step), synced(mcja_step),
                                               repeats=repeats)
    result = {
        "benchmark": "gpu_step", "device": torch.cuda.get_device_name() if cuda else "cpu (smoke test)",
        "torch": torch.__version__, "batch": batch, "size": list(size), "amp": "bf16", "channels_last": True,
        "fused_adam": cuda,
        "plain_resnet50_ce_ms": round(t_plain * 1e3, 2), "mcja_step_ms": round(t_mcja * 1e3, 2),
        "ratio_mcja_over_plain": round(t_mcja / t_plain, 3),
        "augment_ms": round(t_aug * 1e3, 3), "augment_kernels": kernels_per_call(augment_only, device),
        "step_only_images_per_s": round(batch / t_mcja, 1),
    }
    if compiled is not None:
        (t_compiled,) = timed_interleaved(synced(augment_compiled), repeats=repeats)
        result.update(augment_compiled_ms=round(t_compiled * 1e3, 3),
                      augment_compiled_kernels=kernels_per_call(augment_compiled, device))
    result.update(recipe_throughput(device, size, batch, 20 if args.smoke else args.recipe_steps))
    if "recipe_images_per_s" in result:
        result["recipe_over_step_only"] = round(result["recipe_images_per_s"] / result["step_only_images_per_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
