"""LLCM builder (low-light cross-modality; 9 dual-mode cameras)."""

from .builder import VIReIDBuilder


class LLCM(VIReIDBuilder):
    LAYOUT = "llcm"
    DESCRIPTION = ("LLCM: 1,064 identities, 9 dual-mode cameras (same index = same physical camera in both "
                   "modalities); 713 training ids from idx/train_{vis,nir}.txt, test ids in idx/test_id.txt.")
    CITATION = """@inproceedings{zhang2023diverse,
  title={Diverse Embedding Expansion Network and Low-Light Cross-Modality Benchmark for Visible-Infrared Person Re-identification},
  author={Zhang, Yukang and Wang, Hanzi}, booktitle={CVPR}, year={2023}}"""
