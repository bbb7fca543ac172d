"""Training-augmentation throughput: batched tensor pipeline vs per-image PIL (the released code's way).

Both start from images already resized to 384x192 (uint8 batch vs PIL images) and produce the
normalised float tensors of docs/method.md §1.1/1.2 for a batch with the SYSU modality mix (2/3 visible).
The PIL side re-implements the released code's transforms (numpy on PIL images, torchvision PIL
transforms) in this file; it runs in one process like a single DataLoader worker. Throughput ratios
are reported at 1 torch thread (per core, the fair comparison: PIL ops are single-threaded) and at
the machine's default thread count, timed in interleaved rounds. The batched pipeline is written for
the GPU (benchmarks/gpu_step.py times it there); this is its CPU cost, for reference.
Prints one JSON object.
"""

import json
import random

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from mcja_hub.augment import TrainAugment
from common import timed_interleaved

H, W, BATCH = 384, 192, 128


class PILWeightedGrayscale:
    def __call__(self, img):
        if random.random() >= 0.5:
            return img
        a = np.asarray(img).astype(np.float64)
        w = np.random.rand(3)
        w /= w.sum()
        g = (a * w).sum(axis=2).astype(np.uint8)
        return Image.fromarray(np.stack([g] * 3, axis=2))


class PILChannelCutMix:
    def __call__(self, img):
        if random.random() >= 0.5:
            return img
        a = np.array(img)  # a copy: np.asarray is read-only with Pillow >= 9.2
        b, f = random.sample(range(3), 2)
        out = a[:, :, b].copy()
        h_img, w_img = a.shape[:2]
        for _ in range(10):
            area = random.uniform(0.02, 0.33) * h_img * w_img
            r = np.exp(random.uniform(np.log(0.3), np.log(3.3)))
            h, w = int(round(np.sqrt(area * r))), int(round(np.sqrt(area / r)))
            if h < h_img and w < w_img:
                i, j = random.randint(0, h_img - h), random.randint(0, w_img - w)
                out[i:i + h, j:j + w] = a[i:i + h, j:j + w, f]
                break
        return Image.fromarray(np.stack([out] * 3, axis=2))


class PILSpectrumJitter:
    def __call__(self, img):
        if random.random() >= 0.5:
            return img
        c = np.asarray(img)[:, :, random.randrange(3)]
        degenerate = Image.fromarray(np.stack([c] * 3, axis=2))
        return Image.blend(degenerate, img, random.uniform(0, 1))


def pil_pipelines():
    tail = [T.RandomHorizontalFlip(), T.RandomCrop((H, W), padding=10, fill=127), T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            T.RandomErasing(scale=(0.02, 0.30), value=0)]
    maa = T.RandomChoice([T.RandomApply([T.ColorJitter(hue=0.2)], p=0.5), PILWeightedGrayscale(),
                          PILChannelCutMix(), PILSpectrumJitter()])
    return T.Compose([maa] + tail), T.Compose(tail)


def main():
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    batch = torch.randint(0, 256, (BATCH, 3, H, W), dtype=torch.uint8)
    modality = (torch.arange(BATCH) % 3 == 2).long()  # 1/3 infrared
    images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in batch]
    visible_tf, ir_tf = pil_pipelines()
    augment = TrainAugment()
    gen = torch.Generator().manual_seed(0)

    def run_pil():
        torch.stack([(ir_tf if m else visible_tf)(img) for img, m in zip(images, modality.tolist())])

    default_threads = torch.get_num_threads()
    result = {"benchmark": "augment", "batch": BATCH, "size": [H, W], "torch": torch.__version__}
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        t_pil, t_batched = timed_interleaved(run_pil, lambda: augment(batch, modality, gen), repeats=5)
        result[f"threads_{threads}"] = {
            "pil_images_per_s": round(BATCH / t_pil, 1),
            "batched_images_per_s": round(BATCH / t_batched, 1),
            "ratio": round(t_pil / t_batched, 2),
        }
    torch.set_num_threads(default_threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
