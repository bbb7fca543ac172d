"""RegDB builder: one config per official split (trial1 .. trial10)."""

from dataclasses import dataclass

import datasets

from .builder import VIReIDBuilder
from ..layouts import read_regdb


@dataclass
class RegDBConfig(datasets.BuilderConfig):
    trial: int = 1


class RegDB(VIReIDBuilder):
    LAYOUT = "regdb"
    BUILDER_CONFIG_CLASS = RegDBConfig
    BUILDER_CONFIGS = [RegDBConfig(name=f"trial{t}", trial=t, description=f"RegDB split {t}") for t in range(1, 11)]
    DEFAULT_CONFIG_NAME = "trial1"
    DESCRIPTION = ("RegDB: 412 identities, 10 visible + 10 thermal images each; 10 official train/test splits "
                   "of 206/206 ids (idx/{train,test}_{visible,thermal}_{trial}.txt).")
    CITATION = """@article{nguyen2017person,
  title={Person Recognition System Based on a Combination of Body Images from Visible Light and Thermal Cameras},
  author={Nguyen, Dat Tien and Hong, Hyung Gil and Kim, Ki Wan and Park, Kang Ryoung},
  journal={Sensors}, volume={17}, number={3}, pages={605}, year={2017}}"""

    def _read(self, root):
        return read_regdb(root, self.config.trial)
