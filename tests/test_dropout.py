"""ktirt.models.dropout: the CPU mask drawn 16 bits at a time behaves as torch's dropout."""

import pytest
import torch

from ktirt.models.dropout import Dropout


def test_keeps_one_minus_p_and_is_unbiased():
    torch.manual_seed(0)
    layer = Dropout(0.2).train()
    x = torch.ones(64, 200, 64)
    y = layer(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.8) < 0.002  # 819,200 draws: the standard error is 0.0004
    assert abs(y.mean().item() - 1.0) < 0.003
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 65536 / (65536 - round(0.2 * 65536))))


def test_every_lane_of_a_draw_is_uniform():
    """Each 64-bit draw fills four neighbouring elements: a lane whose top bit never varied would keep too often."""
    torch.manual_seed(1)
    y = Dropout(0.5).train()(torch.ones(400_000))
    per_lane = (y.view(-1, 4) != 0).float().mean(0)
    assert torch.all((per_lane - 0.5).abs() < 0.006), per_lane


def test_gradient_is_the_mask_and_a_seed_repeats_it():
    layer = Dropout(0.3).train()
    x = torch.randn(8, 50, 16, requires_grad=True)
    torch.manual_seed(2)
    y = layer(x)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())
    torch.manual_seed(2)
    assert torch.equal(layer(x), y)


def test_evaluation_and_zero_rate_are_identity():
    x = torch.randn(5, 7)
    assert torch.equal(Dropout(0.4).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)
