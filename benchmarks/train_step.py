"""Time per training step: the full MCJA step vs a plain timm ResNet-50 cross-entropy step.

Same batch (32 images at 384x192, 2/3 visible), same process, same optimizer (Adam). The MCJA step is
what recipes/train.py does per step: batched MAA + flip/crop/erasing on the uint8 batch, ResNet-50 with
5 MDA modules, GeM, BNNeck, ID + CMR loss, backward, Adam. The baseline is timm's resnet50 on the
already-normalised batch with cross-entropy. Reports seconds per step, the ratio, and the augmentation
alone with its share of the MCJA step. Prints one JSON object. (benchmarks/gpu_step.py: the same on a GPU.)
"""

import json

import timm
import torch
import torch.nn.functional as F

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.augment import TrainAugment
from mcja_hub.losses import cmr_loss, id_loss
from common import timed_interleaved

BATCH, IDS, H, W = 32, 395, 384, 192




def main():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (BATCH, 3, H, W), dtype=torch.uint8)
    labels = torch.arange(BATCH) // 4  # 8 identities x 4 images
    modality = (torch.arange(BATCH) % 3 == 2).long()
    augment = TrainAugment()
    gen = torch.Generator().manual_seed(0)

    mcja = MCJAModel(MCJAConfig(num_classes=IDS, mda_layers=(0, 2, 3, 0))).train()
    opt_m = torch.optim.Adam([p for p in mcja.parameters() if p.requires_grad], lr=3.5e-4, weight_decay=5e-4)

    def mcja_step():
        out = mcja(augment(images, modality, gen))
        loss = id_loss(out.logits, labels) + cmr_loss(out.embeddings, labels, modality)
        loss.backward()
        opt_m.step()
        opt_m.zero_grad(set_to_none=True)

    plain = timm.create_model("resnet50", num_classes=IDS).train()
    opt_p = torch.optim.Adam(plain.parameters(), lr=3.5e-4, weight_decay=5e-4)
    normalised = augment(images, torch.ones(BATCH, dtype=torch.long), gen)  # the same batch, already a float tensor

    def plain_step():
        F.cross_entropy(plain(normalised), labels).backward()
        opt_p.step()
        opt_p.zero_grad(set_to_none=True)

    t_plain, t_mcja, t_aug = timed_interleaved(plain_step, mcja_step, lambda: augment(images, modality, gen))
    print(json.dumps({"benchmark": "train_step", "batch": BATCH, "size": [H, W], "plain_resnet50_ce_s": round(t_plain, 3),
                      "mcja_step_s": round(t_mcja, 3), "ratio_mcja_over_plain": round(t_mcja / t_plain, 2),
                      "augment_s": round(t_aug, 4), "augment_share_of_mcja_step": round(t_aug / t_mcja, 4),
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
