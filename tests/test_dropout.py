"""ktirt.models.dropout: the CPU mask drawn 16 bits at a time behaves as torch's dropout."""

import pytest
import torch

from ktirt.models.dkt import DKT
from ktirt.models.dropout import Dropout
from ktirt.models.sakt import SAKT
from ktirt.models.wdirt import WideDeepIRT


def test_keeps_one_minus_p_and_is_unbiased():
    torch.manual_seed(0)
    y = Dropout(0.2).train()(torch.ones(64, 200, 64))
    kept = y[y != 0]
    assert abs(len(kept) / y.numel() - 0.8) < 0.002  # 819,200 draws: the standard error is 0.0004
    assert abs(y.mean().item() - 1.0) < 0.003
    assert torch.all(kept == kept[0]) and kept[0].item() == pytest.approx(1 / 0.8, rel=2e-5)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_every_lane_of_a_draw_keeps_one_minus_p(p):
    """Each 64-bit draw fills four neighbouring elements: a lane whose high bits never varied would keep too often
    (torch's `random_()` on int64 leaves the top lane's sign bit 0)."""
    torch.manual_seed(1)
    y = Dropout(p).train()(torch.ones(400_000))
    per_lane = (y.view(-1, 4) != 0).float().mean(0)
    assert torch.all((per_lane - (1 - p)).abs() < 0.006), per_lane


def test_gradient_is_the_mask_and_a_seed_repeats_it():
    layer = Dropout(0.3).train()
    x = torch.randn(8, 50, 16, requires_grad=True)
    torch.manual_seed(2)
    y = layer(x)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())
    torch.manual_seed(2)
    assert torch.equal(layer(x), y)


def test_evaluation_zero_rate_and_a_rate_that_rounds_to_one_are_torchs():
    x = torch.randn(5, 7)
    assert torch.equal(Dropout(0.4).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(1 - 1e-6).train()(x), torch.zeros_like(x))  # no division by zero
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_a_rate_set_after_construction_takes_effect():
    layer = Dropout(0.1).train()
    layer.p = 0.0
    x = torch.randn(100)
    assert torch.equal(layer(x), x)


def test_every_engine_uses_it():
    """No torch.nn.Dropout left in SAKT, DKT or WD-IRT: each would draw its CPU mask one Bernoulli at a time."""
    import inspect
    for model in (SAKT, DKT, WideDeepIRT):
        assert "nn.Dropout(" not in inspect.getsource(inspect.getmodule(model))
