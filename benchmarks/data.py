"""Image decoding throughput: the prepared Arrow dataset vs opening the JPEG files with PIL per access.

A synthetic SYSU-MM01-layout dataset (128x64 JPEGs) is generated and prepared with the package's
builder; then the same images are decoded to RGB arrays in the same random order both ways, in
the same process. Both decode JPEG; the Arrow path saves the per-file open/stat. Prints one JSON object.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mcja_hub.data import generate_synthetic, load_vireid
from common import timed

IDS = 100




def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic(Path(tmp) / "sysu", "sysu_mm01", ids=IDS, seed=0)
        t = time.perf_counter()
        ds = load_vireid("sysu_mm01", root, cache_dir=Path(tmp) / "cache")["train"]
        prepare_s = time.perf_counter() - t
        order = np.random.default_rng(0).permutation(len(ds)).tolist()
        paths = ds["path"]

        def arrow():
            for i in order:
                np.asarray(ds[i]["image"].convert("RGB"))

        def files():
            for i in order:
                with Image.open(root / paths[i]) as im:
                    np.asarray(im.convert("RGB"))

        t_files, t_arrow = timed(files), timed(arrow)
    print(json.dumps({
        "benchmark": "data", "images": len(order), "image_size": [128, 64], "prepare_s": round(prepare_s, 2),
        "pil_files_images_per_s": round(len(order) / t_files), "arrow_images_per_s": round(len(order) / t_arrow),
        "ratio": round(t_files / t_arrow, 2),
    }))


if __name__ == "__main__":
    main()
