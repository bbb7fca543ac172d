"""mcja-hub: MCJA for visible-infrared person re-identification.

Importing the package registers ``mcja_resnet50`` and ``mcja_resnet50_mda`` with timm. It stays light:
accelerate and datasets are only imported by the modules that need them.
"""

from .models import MCJAConfig, MCJAModel, MCJAOutput

__version__ = "0.1.0"
__all__ = ["MCJAConfig", "MCJAModel", "MCJAOutput", "__version__"]
