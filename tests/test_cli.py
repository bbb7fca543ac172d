import json
import subprocess
import sys

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.cli import main


def test_models_lists_registered(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == ["mcja_resnet50", "mcja_resnet50_mda"]


def test_info_reads_folder(tmp_path, capsys):
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=4)).save_pretrained(tmp_path / "m")
    assert main(["info", "--model", str(tmp_path / "m")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedding_dim"] == 512 and info["config"]["num_classes"] == 4
    assert info["parameters"] == sum(p.numel() for p in MCJAModel(MCJAConfig(backbone="resnet18", num_classes=4)).parameters())


def test_console_script_installed():
    exe = __import__("shutil").which("mcja", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the `mcja` console script is not installed next to this python"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("mcja-hub ")
