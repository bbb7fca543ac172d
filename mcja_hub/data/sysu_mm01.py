"""SYSU-MM01 builder (the module name is the builder name ``datasets`` uses)."""

from .builder import VIReIDBuilder


class SYSUMM01(VIReIDBuilder):
    LAYOUT = "sysu_mm01"
    DESCRIPTION = ("SYSU-MM01: 491 identities, 4 RGB cameras (cam1, cam2 indoor; cam4, cam5 outdoor) and 2 IR "
                   "cameras (cam3 indoor, cam6 outdoor). train = train_id + val_id (395 ids), test = test_id (96).")
    CITATION = """@inproceedings{wu2017rgb,
  title={RGB-Infrared Cross-Modality Person Re-Identification},
  author={Wu, Ancong and Zheng, Wei-Shi and Yu, Hong-Xing and Gong, Shaogang and Lai, Jianhuang},
  booktitle={ICCV}, year={2017}}"""
