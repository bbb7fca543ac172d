"""Models: MCJAModel and its parts. Importing registers ``mcja_resnet50*`` with timm."""

from .mcja import BNNeck, GeM, MCJAConfig, MCJAModel, MCJAOutput, MDA, mcja_resnet50, mcja_resnet50_mda

__all__ = ["BNNeck", "GeM", "MCJAConfig", "MCJAModel", "MCJAOutput", "MDA", "mcja_resnet50", "mcja_resnet50_mda"]
