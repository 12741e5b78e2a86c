"""Bilinear pooling and HBP's interactions: equal to direct float64 transcriptions of the
formulas, gradients checked, float32 under autocast."""

from __future__ import annotations

import torch

from labkit.bilinear.pooling import bilinear_pool, hbp_interactions, signed_sqrt_l2


def _maps(n=2, channels=(3, 4, 5), h=3, w=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, c, h, w, generator=g, dtype=torch.float64) for c in channels)


def test_bilinear_pool_is_the_mean_outer_product() -> None:
    (x,) = _maps(channels=(4,))
    expected = torch.stack([
        sum(torch.outer(x[i, :, r, s], x[i, :, r, s]) for r in range(3) for s in range(2)) / 6
        for i in range(2)
    ])  # fmt: skip
    torch.testing.assert_close(bilinear_pool(x), expected.reshape(2, 16), rtol=0, atol=1e-12)


def test_signed_sqrt_l2() -> None:
    z = torch.tensor([[4.0, -9.0, 0.0]], dtype=torch.float64)
    root = torch.tensor([[2.0, -3.0, 0.0]], dtype=torch.float64)
    root = torch.sign(root) * torch.sqrt(root.abs() ** 2 + 1e-10)
    torch.testing.assert_close(signed_sqrt_l2(z), root / root.norm(), rtol=0, atol=1e-12)


def test_hbp_interactions_gradcheck() -> None:
    maps = [m.requires_grad_() for m in _maps(n=1, channels=(2, 3, 2), h=2, w=2)]
    g = torch.Generator().manual_seed(1)
    weights = [
        torch.randn(3, c, generator=g, dtype=torch.float64, requires_grad=True) for c in (2, 3, 2)
    ]
    biases = [
        torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)
    ]
    assert torch.autograd.gradcheck(
        lambda *t: hbp_interactions(t[:3], t[3:6], t[6:], chunk=2), (*maps, *weights, *biases)
    )


def test_bilinear_pool_runs_in_float32_under_autocast() -> None:
    (x,) = _maps(channels=(4,))
    big = (x.float() * 300).to(torch.float16)  # products summed over locations pass 65504
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        pooled = bilinear_pool(big)
    assert pooled.dtype == torch.float32 and torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled, bilinear_pool(big.float()))
