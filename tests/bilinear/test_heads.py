"""Bilinear heads and nets: HBP's head equal to the formula with gradients, its projections not
kept for backward; the nets' frozen stage trains only the head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labkit.bilinear.heads import HBP, BilinearCNN, BilinearHead, GAPHead, GAPNet, HBPHead
from labkit.models.backbones import small_vgg_backbone


def _maps(n=2, channels=(3, 4, 5), h=3, w=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, c, h, w, generator=g, dtype=torch.float64) for c in channels)


def _hbp_direct(maps, head: HBPHead) -> torch.Tensor:
    """The formula as written: project each map, multiply pairs, sum over locations."""
    proj = [F.conv2d(m, p.weight, p.bias) for m, p in zip(maps, head.projections, strict=True)]
    parts = []
    for a, b in ((0, 1), (0, 2), (1, 2)):
        z = (proj[a] * proj[b]).sum(dim=(2, 3))
        z = torch.sign(z) * torch.sqrt(z.abs() + 1e-10)
        parts.append(z / z.norm(dim=1, keepdim=True))
    return head.fc(torch.cat(parts, dim=1))


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_hbp_head_equals_the_formula_with_gradients(chunk: int) -> None:
    torch.manual_seed(0)
    head = HBPHead((3, 4, 5), d=7, num_classes=4, chunk=chunk).double()
    maps = [m.requires_grad_() for m in _maps()]
    out = head(maps)
    out.square().sum().backward()
    grads = [m.grad.clone() for m in maps] + [p.grad.clone() for p in head.parameters()]
    for t in [*maps, *head.parameters()]:
        t.grad = None
    expected = _hbp_direct(maps, head)
    expected.square().sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    reference = [m.grad for m in maps] + [p.grad for p in head.parameters()]
    for got, want in zip(grads, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_hbp_keeps_only_its_inputs_and_weights_for_backward() -> None:
    head = HBPHead((3, 4, 5), d=64, num_classes=2)
    maps = [m.float().requires_grad_() for m in _maps()]
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t,
                                                  lambda t: t):  # fmt: skip
        head.interactions(maps)
    expected = [tuple(m.shape) for m in maps] + [(64, c) for c in (3, 4, 5)] + [(64,)] * 3
    assert saved == expected  # no (N, d, H*W) projection or product


def test_hbp_refuses_mismatched_maps() -> None:
    head = HBPHead((3, 4, 5), d=7, num_classes=4).double()
    maps = list(_maps())
    maps[2] = maps[2][:, :, :2]
    with pytest.raises(ValueError, match="share batch and H x W"):
        head(maps)


def test_bilinear_and_gap_heads_shapes() -> None:
    (x,) = _maps(channels=(6,))
    assert BilinearHead(6, 5).double()(x).shape == (2, 5)
    assert GAPHead(6, 5).double()(x).shape == (2, 5)


def test_nets_and_frozen_forward() -> None:
    x = torch.randn(2, 3, 32, 32)
    nets = [BilinearCNN(small_vgg_backbone((8, 16)), 5), HBP(small_vgg_backbone((8, 16)), 32, 5),
            GAPNet(small_vgg_backbone((8, 16)), 5)]  # fmt: skip
    for net in nets:
        assert net(x).shape == (2, 5)
        net.train()
        net.set_frozen(True)
        net(x).sum().backward()
        assert all(p.grad is None for p in net.backbone.parameters())
        assert all(p.grad is not None for p in net.head.parameters())
        assert not net.backbone.training
        net.set_frozen(False)
        net(x).sum().backward()
        assert all(p.grad is not None for p in net.backbone.parameters())


def test_hbp_runs_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    head = HBPHead((3, 4, 5), d=16, num_classes=4)
    maps = [m.float() for m in _maps()]
    expected = head.interactions(maps)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        low = [m.to(torch.bfloat16).requires_grad_() for m in maps]
        got = head.interactions(low)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, head.interactions([m.float() for m in low]))
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=1e-2)  # inputs rounded to bf16
    got.sum().backward()
    assert all(m.grad is not None and m.grad.dtype == torch.bfloat16 for m in low)
