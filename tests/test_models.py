
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import mcja_hub
from mcja_hub.models import GeM, MCJAConfig, MCJAModel, MCJAOutput, MDA
from conftest import randomize_

X = torch.randn(2, 3, 384, 192)


@pytest.fixture(scope="module")
def mda_model():
    torch.manual_seed(0)
    return randomize_(MCJAModel(MCJAConfig(num_classes=7, mda_layers=(0, 2, 3, 0))), seed=1).eval()


def test_shapes_last_stride_2(mda_model):
    fmap = mda_model.forward_features(X)
    assert fmap.shape == (2, 2048, 12, 6)
    out = mda_model(X)
    assert isinstance(out, MCJAOutput)
    assert out.embeddings.shape == (2, 2048) and out.logits.shape == (2, 7)


def test_last_stride_1_doubles_map_and_keeps_params():
    m2, m1 = MCJAModel(MCJAConfig()), MCJAModel(MCJAConfig(last_stride=1))
    assert m1.forward_features(X[:1]).shape == (1, 2048, 24, 12)
    assert sum(p.numel() for p in m1.parameters()) == sum(p.numel() for p in m2.parameters())


def test_parameter_count_equals_trunk_bnneck_classifier():
    nc = 395
    model = timm.create_model("mcja_resnet50", num_classes=nc)
    trunk = timm.create_model("resnet50", num_classes=0)
    n_trunk = sum(p.numel() for p in trunk.parameters())
    expected = n_trunk + 2 * 2048 + 2048 * nc  # BNNeck gamma+beta, bias-free classifier
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.classifier.bias is None
    assert not model.bn_neck.bias.requires_grad and torch.all(model.bn_neck.bias == 0)


def test_timm_registration():
    assert set(timm.list_models("mcja*")) >= {"mcja_resnet50", "mcja_resnet50_mda"}
    m = timm.create_model("mcja_resnet50_mda", num_classes=10, mda_m=12)
    assert isinstance(m, MCJAModel) and m.config.mda_layers == (0, 2, 3, 0) and m.config.mda_m == 12
    cfg = timm.data.resolve_model_data_config(m)
    assert cfg["input_size"] == (3, 384, 192) and cfg["mean"] == (0.485, 0.456, 0.406)


@pytest.mark.parametrize("name,stages", [("mcja_resnet50", (0, 0, 0, 0)), ("mcja_resnet50_mda", (0, 2, 3, 0))])
def test_registered_names_build_what_they_document(name, stages):
    """Each name's docstring: a ResNet-50 with GeM p=3, BNNeck, last stride 2; MDA modules after the last
    blocks of layer2 (2) and layer3 (3) for the TCSVT name, none for the arXiv-v1 baseline."""
    m = timm.create_model(name, num_classes=5)
    c = m.config
    assert (c.backbone, c.gem_p, c.last_stride, c.mda_layers, c.pretrained_backbone) == ("resnet50", 3.0, 2, stages, False)
    assert m.num_classes == 5 and m.num_features == 2048 and isinstance(m.bn_neck, nn.Module)
    blocks = {k.rsplit(".sc_conv", 1)[0] for k in m.state_dict() if k.endswith(".sc_conv.weight")}
    assert blocks == {f"mda.layer{s + 1}.{i}" for s, n in enumerate(stages) for i in range(n)}
    assert m.backbone.layer4[0].conv2.stride == (2, 2)  # last stride 2 (timm's resnet50 strides in conv2)


def test_mda_placement_and_keys(mda_model):
    keys = {k.split(".sc_conv")[0] for k in mda_model.state_dict() if ".sc_conv.weight" in k}
    assert keys == {"mda.layer2.0", "mda.layer2.1", "mda.layer3.0", "mda.layer3.1", "mda.layer3.2"}
    assert mda_model.mda["layer2"][0].sc_conv.in_channels == 512
    assert mda_model.mda["layer3"][0].sc_conv.in_channels == 1024
    # Record the call order: each MDA must run right after layer2 blocks 2,3 and layer3 blocks 3,4,5.
    order = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n))
             for n, m in mda_model.named_modules() if n.count(".") == 2 and n.split(".")[0] in ("backbone", "mda")
             and n.split(".")[1] in ("layer2", "layer3")]
    try:
        mda_model.forward_features(X[:1, :, :128, :64])
    finally:
        for h in hooks:
            h.remove()
    assert order == [
        "backbone.layer2.0", "backbone.layer2.1", "backbone.layer2.2", "mda.layer2.0", "backbone.layer2.3", "mda.layer2.1",
        "backbone.layer3.0", "backbone.layer3.1", "backbone.layer3.2", "backbone.layer3.3", "mda.layer3.0",
        "backbone.layer3.4", "mda.layer3.1", "backbone.layer3.5", "mda.layer3.2",
    ]


@pytest.mark.parametrize("train", [False, True])
def test_mda_is_identity_at_init(train):
    torch.manual_seed(0)
    plain = MCJAModel(MCJAConfig(num_classes=3))
    with_mda = MCJAModel(MCJAConfig(num_classes=3, mda_layers=(0, 2, 3, 0)))
    missing, unexpected = with_mda.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("mda.") for k in missing)
    plain.train(train), with_mda.train(train)
    x = torch.randn(4, 3, 128, 64)
    assert torch.equal(plain(x).embeddings, with_mda(x).embeddings)


def _mda_reference(mda: MDA, x: torch.Tensor) -> torch.Tensor:
    """docs/method.md §2 step by step with explicit loops (eval-mode BNs)."""
    B, C, H, W = x.shape
    M = mda.sc_conv.out_channels
    out = torch.empty_like(x)
    for b in range(B):
        xb = x[b].reshape(C, H * W)
        logits = mda.sc_conv.weight.reshape(M, C) @ xb + mda.sc_conv.bias[:, None]  # (M, N)
        ctx = torch.stack([(torch.exp(logits[m]) / torch.exp(logits[m]).sum() * xb).sum(1) for m in range(M)], 1)
        z = torch.stack([(mda.ca_conv.weight[c, 0] * ctx[c]).sum() for c in range(C)])
        bn = mda.ca_bn
        z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        g = 1 / (1 + torch.exp(-z))
        y = x[b] * g[:, None, None]
        n2 = mda.norm_bn
        y = (y - n2.running_mean[:, None, None]) / torch.sqrt(n2.running_var[:, None, None] + n2.eps)
        out[b] = x[b] + y * n2.weight[:, None, None] + n2.bias[:, None, None]
    return out


@pytest.mark.parametrize("m", [1, 2, 12])
def test_mda_matches_reference(m):
    mda = randomize_(MDA(16, m), seed=m).eval()
    with torch.no_grad():
        mda.norm_bn.weight.normal_()  # leave the identity init so the branch is visible
        x = torch.rand(3, 16, 6, 5)
        torch.testing.assert_close(mda(x), _mda_reference(mda.double(), x.double()).float(), rtol=1e-5, atol=1e-5)


def test_gem_matches_formula_and_runs_fp32_under_autocast():
    x = torch.rand(2, 4, 3, 5) * 3
    ref = torch.stack([torch.stack([(x[b, c].flatten().pow(3).mean() + 1e-12) ** (1 / 3) for c in range(4)])
                       for b in range(2)])
    torch.testing.assert_close(GeM(3.0)(x), ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert GeM(3.0)(x.bfloat16()).dtype == torch.float32


def test_bnneck_bias_stays_zero_after_training_step():
    model = MCJAModel(MCJAConfig(num_classes=4))
    opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=5e-4)
    out = model(torch.randn(4, 3, 64, 32))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert torch.all(model.bn_neck.bias == 0)
    assert not torch.all(model.bn_neck.weight == 1)  # gamma does train


def test_embed_normalised_eval_mode_restored_no_grad(mda_model):
    mda_model.train()
    e = mda_model.embed(X, batch_size=1)
    assert mda_model.training and not e.requires_grad
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    mda_model.eval()
    with torch.no_grad():
        ref = F.normalize(mda_model(X).embeddings, dim=1)
    torch.testing.assert_close(e, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="float"):
        mda_model.embed(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_embedding_only_model():
    m = MCJAModel(MCJAConfig(num_classes=0)).eval()
    assert m(X[:1]).logits is None
    with pytest.raises(RuntimeError, match="no classifier"):
        m.forward_head(m.forward_features(X[:1]))
    m.reset_classifier(9)
    assert m(X[:1]).logits.shape == (1, 9) and m.config.num_classes == 9


def test_other_timm_cnn_backbone():
    m = MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3, mda_layers=(0, 1, 1, 0), last_stride=1)).eval()
    out = m(torch.randn(2, 3, 128, 64))
    assert out.embeddings.shape == (2, 512) and m.forward_features(torch.randn(1, 3, 128, 64)).shape[-2:] == (8, 4)


# --- clear errors ---------------------------------------------------------------------------------

def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet5000'"):
        MCJAModel(MCJAConfig(backbone="resnet5000"))


def test_mda_on_non_resnet_backbone():
    with pytest.raises(ValueError, match="MDA needs a ResNet-style backbone.*mobilenetv3_small_050"):
        MCJAModel(MCJAConfig(backbone="mobilenetv3_small_050", mda_layers=(0, 1, 0, 0)))


def test_too_many_mda_modules():
    with pytest.raises(ValueError, match="5 MDA modules in layer2, which has 4 blocks"):
        MCJAModel(MCJAConfig(mda_layers=(0, 5, 0, 0)))


@pytest.mark.parametrize("field,value", [("last_stride", 3), ("gem_p", 0), ("mda_m", 0), ("mda_layers", (1, 2)),
                                         ("num_classes", -1)])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=f"MCJAConfig.{field}"):
        MCJAConfig(**{field: value})


def test_unknown_config_field_via_timm():
    with pytest.raises(ValueError, match=r"unknown MCJAConfig field\(s\) \['drop_rate'\]"):
        timm.create_model("mcja_resnet50", drop_rate=0.1)


def test_pretrained_backbone_offline_is_clear(tmp_path, monkeypatch):
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))  # empty cache: nothing to fall back on
    with pytest.raises(RuntimeError, match="could not load ImageNet weights for backbone 'resnet18'"):
        MCJAModel(MCJAConfig(backbone="resnet18", pretrained_backbone=True))


def test_package_import_is_light():
    import subprocess, sys
    code = "import sys, mcja_hub; print(sorted({m.split('.')[0] for m in sys.modules} & {'accelerate', 'datasets'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert mcja_hub.MCJAModel is MCJAModel
