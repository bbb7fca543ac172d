"""`make demo`: what the package can do end to end today, on CPU, offline.

Builds the MCJA architecture (ResNet-50 + MDA), publishes it as a Hub-format folder, loads it back
by path and as a Hub id from a local cache, and checks the embeddings match bit for bit. Training and
benchmark evaluation join this script as they land (see the open issues); nothing here is simulated.
"""

import time
from pathlib import Path

import torch

import mcja_hub
from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.hub import cache_model_folder

OUT = Path("outputs/demo")


def main() -> None:
    t0 = time.time()
    torch.manual_seed(8)
    config = MCJAConfig(num_classes=395, mda_layers=(0, 2, 3, 0), mda_m=2)
    model = MCJAModel(config).eval()
    folder = OUT / "mcja-resnet50-mda-untrained"
    model.save_pretrained(folder)

    images = torch.randn(4, 3, *config.input_size)  # stand-ins: real images need the data pipeline
    reloaded = MCJAModel.from_pretrained(folder)
    same = torch.equal(model.embed(images), reloaded.embed(images))

    # Hub-id loading, offline, from a cache laid out as `hf download` leaves it.
    cache = OUT / "hf-cache"
    cache_model_folder(folder, "demo/mcja-sysu", cache_dir=cache)
    from_hub = MCJAModel.from_pretrained("demo/mcja-sysu", cache_dir=cache, local_files_only=True)
    same_hub = torch.equal(model.embed(images), from_hub.embed(images))

    n_params = sum(p.numel() for p in model.parameters())
    print("\n== mcja-hub demo ==")
    print(f"mcja-hub {mcja_hub.__version__}, torch {torch.__version__}")
    print(f"model      : {config.backbone} + {sum(config.mda_layers)} MDA, {n_params / 1e6:.2f} M parameters")
    print(f"folder     : {folder}/ ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    print(f"embeddings : {tuple(reloaded.embed(images).shape)}, L2-normalised")
    print(f"round trip : folder {'identical' if same else 'DIFFERENT'}, hub id {'identical' if same_hub else 'DIFFERENT'}")
    print("not yet    : training, synthetic data and benchmark evaluation (open issues 4-7)")
    print(f"time       : {time.time() - t0:.1f} s")
    if not (same and same_hub):
        raise SystemExit("round trip changed the embeddings")


if __name__ == "__main__":
    main()
