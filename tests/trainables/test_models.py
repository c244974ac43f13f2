"""Models: heads, input resizing, channels, stochastic depth, local weights,
and the IJCNN residual SE network (tiny widths, 8-16 px inputs, no Ray)."""

import pytest
import timm
import torch
from torch import nn

from raysweep.config.sections.model import ModelConfig
from raysweep.errors import ConfigError
from trainables.models import build_model
from trainables.zoo.resse import stage_layout

TINY = {"widths": [4, 8]}  # tiny_cnn: 8 feature channels, one 2x pool


def model(num_classes=5, data_chans=1, **fields):
    """build_model for data of `data_chans` channels; `fields` are `model.*` keys."""
    fields.setdefault("kwargs", dict(TINY))
    return build_model(ModelConfig(**fields), num_classes=num_classes, in_chans=data_chans)


def resse(**kwargs):
    kwargs = {"width_multiplier": 0.05, "depth_multiplier": 0.3, **kwargs}
    return timm.create_model("resse_ijcnn", num_classes=0, in_chans=3, **kwargs)


# -- heads ---------------------------------------------------------------------

@pytest.mark.parametrize("head", ["linear", "mish_mlp", "normed_linear"])
def test_every_head_gives_one_logit_per_class(head):
    m = model(num_classes=5, head=head).eval()
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 5)


def test_mish_mlp_is_the_ece449_head():
    m = model(num_classes=43, head="mish_mlp")
    layers = list(m.head)
    assert [type(layer) for layer in layers] == [nn.Linear, nn.Mish, nn.Dropout, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (8, 256)
    assert layers[2].p == 0.5
    assert (layers[3].in_features, layers[3].out_features) == (256, 43)


def test_normed_linear_logits_are_cosines():
    m = model(num_classes=4, head="normed_linear").eval()
    x = torch.randn(6, 1, 8, 8) * 50
    logits = m(x)
    assert logits.abs().max() <= 1 + 1e-6
    # a cosine ignores the features' norm: the same features scaled give the same logits
    features = m.backbone.forward_head(m.backbone.forward_features(x), pre_logits=True)
    assert torch.allclose(m.head(features * 7.0), logits, atol=1e-6)


# -- inputs --------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_input_size_resizes_inside_the_model(mode):
    m = model(input_size=16, resize_mode=mode).eval()
    seen = []
    m.backbone.stem.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    x = torch.rand(2, 1, 8, 8)
    m(x)
    assert seen[0].shape == (2, 1, 16, 16)
    if mode == "nearest":  # nn.Upsample's default, as the CIFAR report's model: each pixel becomes 2x2
        assert torch.equal(seen[0], x.repeat_interleave(2, -2).repeat_interleave(2, -1))


def test_shrinking_inputs_are_antialiased():
    m = model(input_size=8).eval()
    seen = []
    m.backbone.stem.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    # half-on stripes of period 4: plain bilinear at 1/4 samples only the 'on' columns and sees all 1s
    cols = torch.arange(32) % 4
    stripes = ((cols == 1) | (cols == 2)).float().expand(1, 1, 32, 32)
    m(stripes)
    assert seen[0].shape == (1, 1, 8, 8)
    assert torch.allclose(seen[0], torch.full((1, 1, 8, 8), 0.5), atol=0.05)


def test_input_of_the_target_size_is_left_alone():
    m = model(input_size=[8, 8]).eval()
    seen = []
    m.backbone.stem.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    x = torch.rand(2, 1, 8, 8)
    m(x)
    assert seen[0] is x


@pytest.mark.parametrize("chans", [1, 4])
def test_in_chans_sets_the_first_conv(chans):
    m = model(data_chans=chans).eval()
    assert m.backbone.stem.in_channels == chans
    assert m(torch.randn(2, chans, 8, 8)).shape == (2, 5)
    # model.in_chans wins over the data's channel count
    m = model(data_chans=3, in_chans=chans).eval()
    assert m.backbone.stem.in_channels == chans
    assert m(torch.randn(2, chans, 8, 8)).shape == (2, 5)


def test_return_features_gives_logits_and_the_feature_map():
    m = model(num_classes=3).eval()
    logits, fmap = m(torch.randn(2, 1, 8, 8), return_features=True)
    assert logits.shape == (2, 3)
    assert fmap.shape == (2, 8, 4, 4)  # B x C x H x W after tiny_cnn's one pool


def test_return_features_of_a_channels_last_transformer_is_channels_first():
    # a two-stage swin of a few thousand parameters; timm's swin gives B x H x W x C
    cfg = ModelConfig(name="swin_tiny_patch4_window7_224", kwargs=dict(img_size=16, window_size=2, embed_dim=8, depths=[1, 1], num_heads=[1, 1]))
    m = build_model(cfg, num_classes=3, in_chans=3).eval()
    logits, fmap = m(torch.randn(2, 3, 16, 16), return_features=True)
    assert logits.shape == (2, 3)
    assert fmap.shape == (2, m.backbone.num_features, 2, 2)


# -- timm options --------------------------------------------------------------

def test_drop_path_rate_reaches_a_timm_backbone():
    rates = lambda cfg: [mod.drop_prob for mod in build_model(cfg, 2, 3).modules() if type(mod).__name__ == "DropPath"]
    assert rates(ModelConfig(name="test_resnet")) == []
    with_rate = rates(ModelConfig(name="test_resnet", drop_path_rate=0.2))
    assert with_rate and max(with_rate) == pytest.approx(0.2) and min(with_rate) > 0


def test_drop_rate_reaches_the_backbone():
    assert model(drop_rate=0.3).backbone.drop_rate == 0.3


def test_an_unknown_model_kwarg_names_its_key():
    with pytest.raises(ConfigError) as info:
        model(kwargs={"widths": [4], "widht": 3})
    assert info.value.path == "model.kwargs.widht"
    assert "does not take 'widht'" in info.value.message
    # a model without stochastic depth refuses the rate rather than ignoring it
    with pytest.raises(ConfigError) as info:
        model(drop_path_rate=0.1)
    assert info.value.path == "model.drop_path_rate"


REPORT_MODELS = ["resnet34", "resnet50", "wide_resnet50_2", "seresnext101_32x4d", "efficientnet_b0", "efficientnet_b4", "efficientnet_b7", "pnasnet5large", "swin_base_patch4_window12_384", "resse_ijcnn"]


@pytest.mark.parametrize("name", REPORT_MODELS)
def test_the_reports_models_are_known_to_timm(name):
    assert timm.is_model(name)


# -- local weights ---------------------------------------------------------------

def _backbone_state(name="tiny_cnn", **kwargs):
    torch.manual_seed(123)
    return timm.create_model(name, num_classes=0, **{"widths": [4, 8], **kwargs}).state_dict()


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_a_local_weights_file_loads_into_the_backbone(tmp_path, wrap):
    saved = _backbone_state(in_chans=1)
    path = tmp_path / "weights.pth"
    torch.save(saved if wrap is None else {wrap: saved, "epoch": 3}, path)
    loaded = model(data_chans=1, pretrained=str(path)).backbone.state_dict()
    assert loaded.keys() == saved.keys()
    for k in saved:
        assert torch.equal(loaded[k], saved[k]), k


def test_a_weights_file_with_a_classifier_loads_without_it(tmp_path):
    torch.manual_seed(5)
    full = timm.create_model("tiny_cnn", num_classes=10, in_chans=1, widths=[4, 8]).state_dict()
    torch.save(full, tmp_path / "w.pth")
    loaded = model(data_chans=1, pretrained=str(tmp_path / "w.pth")).backbone.state_dict()
    assert "fc.weight" not in loaded
    assert torch.equal(loaded["body.0.weight"], full["body.0.weight"])


def test_three_channel_weights_are_adapted_to_one_channel(tmp_path):
    saved = _backbone_state(in_chans=3)
    torch.save(saved, tmp_path / "w.pth")
    stem = model(data_chans=1, pretrained=str(tmp_path / "w.pth")).backbone.stem.weight
    assert torch.allclose(stem, saved["body.0.weight"].sum(dim=1, keepdim=True))  # timm sums RGB for grayscale


def test_a_missing_weights_file_names_model_pretrained(tmp_path):
    with pytest.raises(ConfigError) as info:
        model(pretrained=str(tmp_path / "nope.pth"))
    assert info.value.path == "model.pretrained"
    assert "nope.pth" in info.value.message and "not found" in info.value.message


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch.save(timm.create_model("resse_ijcnn", num_classes=0, width_multiplier=0.05, depth_multiplier=0.3).state_dict(), tmp_path / "other.pth")
    with pytest.raises(ConfigError) as info:
        model(data_chans=3, pretrained=str(tmp_path / "other.pth"))
    assert info.value.path == "model.pretrained"
    assert "does not fit 'tiny_cnn'" in info.value.message


def test_a_corrupt_weights_file_is_a_config_error(tmp_path):
    (tmp_path / "w.pth").write_text("not a checkpoint")
    with pytest.raises(ConfigError) as info:
        model(pretrained=str(tmp_path / "w.pth"))
    assert info.value.path == "model.pretrained"


def test_hub_weights_of_a_model_without_any_are_a_config_error():
    with pytest.raises(ConfigError) as info:
        model(pretrained=True)
    assert info.value.path == "model.pretrained"


# -- resse_ijcnn -----------------------------------------------------------------

# the report's listing, block by block: (filters, strides, survival probability)
REPORT_BLOCKS = (
    [(128, 1, 0.8)] * 3 + [(128, 2, None)]
    + [(128, 1, 0.8)] * 3 + [(128, 2, None)]
    + [(128, 1, 0.7), (256, 1, 0.7), (256, 1, 0.7), (256, 2, None)]
    + [(256, 1, 0.6), (512, 1, 0.6), (512, 1, 0.6), (512, 2, None)]
    + [(512, 1, 0.5)] * 3
)


def test_resse_follows_timms_interface():
    assert timm.is_model("resse_ijcnn")
    m = resse().eval()
    assert m.pretrained_cfg["input_size"] == (3, 74, 55)
    x = torch.randn(2, 3, 74, 55)
    fmap = m.forward_features(x)
    assert fmap.shape == (2, m.num_features, 5, 4)
    assert m.forward_head(fmap, pre_logits=True).shape == (2, m.num_features)
    assert m(x).shape == (2, m.num_features)  # num_classes=0: pooled features
    m.reset_classifier(7)
    assert m(x).shape == (2, 7)
    assert sum(p.numel() for p in m.parameters()) < 15_000


def test_resse_has_the_reports_blocks_and_survival_probabilities():
    m = timm.create_model("resse_ijcnn", num_classes=1)
    got = [(b.conv3.out_channels, b.stride, round(1 - b.drop_prob, 6) if b.stride == 1 else None) for b in m.blocks]
    assert got == REPORT_BLOCKS
    assert m.stem.out_channels == 128 and m.stem.kernel_size == (3, 3)
    # stride-2 blocks always run; every other block has a DropPath of 1 - survival
    for b in m.blocks:
        if b.stride == 2:
            assert isinstance(b.drop_path, nn.Identity)
        else:
            assert b.drop_path.drop_prob == pytest.approx(b.drop_prob)


def test_resse_stochastic_depth_acts_only_in_training():
    torch.manual_seed(0)
    m = resse(survival_probs=[0.5] * 5)
    x = torch.randn(4, 3, 16, 16)
    m.train()
    outs = [m(x) for _ in range(3)]
    assert not all(torch.allclose(outs[0], o) for o in outs[1:])
    m.eval()
    assert torch.equal(m(x), m(x))
    # without stochastic depth, training-mode passes agree too
    always = resse(survival_probs=[1.0] * 5).train()
    assert torch.equal(always(x), always(x))


def test_resse_width_and_depth_multipliers():
    base = stage_layout(1.0, 1.0)
    assert len(base) == 19
    deeper = stage_layout(1.0, 2.0)
    assert len(deeper) == 5 * 6 + 4  # 3 -> 6 blocks per stage; the 4 stride-2 blocks stay single
    assert len(stage_layout(1.0, 0.3)) == 5 * 1 + 4  # ceil(0.9) = 1
    assert [c for c, _, _ in stage_layout(0.5, 1.0)] == [c // 2 for c, _, _ in base]
    assert {c for c, _, _ in stage_layout(1.1, 1.0)} == {144, 280, 560}  # 140.8, 281.6, 563.2 to multiples of 8
    small, wide = resse(), resse(width_multiplier=0.1)
    assert wide.num_features == 2 * small.num_features == 48
    assert len(resse(depth_multiplier=0.5).blocks) == 5 * 2 + 4  # ceil(1.5) = 2 blocks per stage


def test_resse_drop_path_rate_replaces_the_reports_probabilities():
    layout = stage_layout(drop_path_rate=0.2)
    drops = [d for _, s, d in layout if s == 1]
    assert drops[0] == 0.0 and drops[-1] == pytest.approx(0.2) and drops == sorted(drops)
    assert all(d == 0 for _, s, d in layout if s == 2)


def test_resse_builds_through_build_model_with_tiny_multipliers():
    cfg = ModelConfig(name="resse_ijcnn", kwargs={"width_multiplier": 0.05, "depth_multiplier": 0.3})
    m = build_model(cfg, num_classes=2, in_chans=3).eval()
    logits, fmap = m(torch.randn(2, 3, 16, 16), return_features=True)
    assert logits.shape == (2, 2) and fmap.shape[:2] == (2, 24)


def test_resse_refuses_a_bad_multiplier_as_a_config_error():
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(name="resse_ijcnn", kwargs={"width_multiplier": 0}), 2, 3)
    assert info.value.path == "model.kwargs"
    assert "width_multiplier" in info.value.message
