"""AffWildNet family: landmark input, multi-RNN wiring, model- and decision-level fusion."""

from __future__ import annotations

import pytest
import torch

from facebehavior.models import create_model
from facebehavior.models.affwildnet import CNNMultiRNN, DecisionLevelFusion


def _clip(b=1, t=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, 96, 96, generator=g), torch.rand(b, t, 68, 2, generator=g) * 2 - 1


def test_landmarks_reach_the_prediction_and_are_validated():
    torch.manual_seed(0)
    m = create_model("affwildnet_tiny").eval()
    clip, lm = _clip()
    with torch.no_grad():
        a = m(clip, lm)["va"]
        b = m(clip, lm.flip(-1))["va"]
    assert not torch.allclose(a, b)
    torch.testing.assert_close(m(clip, lm.reshape(1, 3, 136))["va"], a)  # (B, T, 136) accepted too
    with pytest.raises(ValueError, match="68"):
        m(clip, torch.rand(1, 3, 5, 2))
    with pytest.raises(ValueError, match="match"):
        m(clip, torch.rand(1, 2, 68, 2))


def test_fc_sizes_follow_the_paper():
    with torch.device("meta"):
        vgg = create_model("affwildnet")
        res = create_model("affwildnet_resnet")
    assert vgg.fc[0].in_features == 512 * 3 * 3 + 136 and vgg.fc[0].out_features == 4096
    assert res.fc[0].in_features == 2048 + 136 and res.fc[0].out_features == 1500
    assert vgg.rnn.gru.num_layers == 2 and vgg.rnn.gru.hidden_size == 128


def test_cnn_rnn_feature_sizes():
    with torch.device("meta"):
        three = create_model("cnn_3rnn")
        one = create_model("cnn_1rnn")
    # pool2 of a 96×96 face is 128×24×24; the last pool 512×3×3; the FC 4096.
    assert [three.rnns[k].gru.input_size for k in ("pool2", "pool5", "fc")] == [128 * 24 * 24, 4608, 4096]
    assert one.rnns["all"].gru.input_size == 128 * 24 * 24 + 4608 + 4096
    assert three.out_features == 384 and one.out_features == 128


def test_model_level_fusion_concatenates_all_rnn_outputs():
    m = create_model("affwild_model_fusion_tiny", mode="fc")
    assert m.fusion[0].in_features == 16 + 3 * 16
    r = create_model("affwild_model_fusion_tiny", mode="rnn")
    assert r.fusion.gru.num_layers == 1 and r.fusion.gru.input_size == 64


def test_decision_level_fusion_weights_are_normalised_validation_ccc():
    torch.manual_seed(0)
    nets = [
        CNNMultiRNN(num_rnns=1, width=1 / 16, fc=8, gru_hidden=4),
        CNNMultiRNN(width=1 / 16, fc=8, gru_hidden=4),
    ]
    fusion = DecisionLevelFusion(nets, ccc=[[0.2, 0.1], [0.6, -0.3]]).eval()
    torch.testing.assert_close(fusion.weights, torch.tensor([[0.25, 1.0], [0.75, 0.0]]))
    clip, lm = _clip()
    with torch.no_grad():
        p0, p1 = nets[0](clip, lm)["va"], nets[1](clip, lm)["va"]
        out = fusion(clip, lm)["va"]
    torch.testing.assert_close(out[..., 0], 0.25 * p0[..., 0] + 0.75 * p1[..., 0])
    torch.testing.assert_close(out[..., 1], p0[..., 1])
    with pytest.raises(ValueError, match="positive"):
        fusion.set_ccc([[0.0, 0.5], [-0.1, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        fusion.set_ccc([[0.5, 0.5]])
