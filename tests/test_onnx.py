"""ONNX export of the embedding model: onnxruntime output equals PyTorch's within 1e-4."""

import numpy as np
import onnxruntime as ort
import torch

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.cli import main
from conftest import randomize_


def test_onnx_parity_with_dynamic_batch(tmp_path, capsys):
    torch.manual_seed(0)
    model = randomize_(MCJAModel(MCJAConfig(backbone="resnet18", num_classes=4, mda_layers=(0, 1, 1, 0),
                                            input_size=(64, 32))))
    model.save_pretrained(tmp_path / "m")
    assert main(["export-onnx", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "m.onnx")]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("m.onnx")] == ["m.onnx"]  # no side file
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "m.onnx").write_bytes((tmp_path / "m.onnx").read_bytes())  # the file alone works
    session = ort.InferenceSession(str(tmp_path / "copy" / "m.onnx"))
    loaded = MCJAModel.from_pretrained(tmp_path / "m")
    for batch in (1, 7):  # exported with batch 1; the batch axis is dynamic
        x = torch.randn(batch, 3, 64, 32)
        got = session.run(["embeddings"], {"images": x.numpy()})[0]
        assert got.shape == (batch, 512)
        np.testing.assert_allclose(got, loaded.embed(x).numpy(), rtol=0, atol=1e-4)
