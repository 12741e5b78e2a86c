"""pairwise_distances against a float64 recomputation; zero diagonal; finite gradients."""

import pytest
import torch

from labkit.triplets import pairwise_distances


def test_matches_float64_loop():
    torch.manual_seed(0)
    x = torch.randn(30, 5)
    expected = torch.tensor(
        [[float((x[i].double() - x[j].double()).norm()) for j in range(30)] for i in range(30)],
        dtype=torch.float64,
    )
    distances = pairwise_distances(x)
    assert distances.shape == (30, 30)
    assert torch.allclose(distances.double(), expected, atol=1e-5)
    assert torch.allclose(pairwise_distances(x, squared=True).double(), expected**2, atol=1e-4)
    assert (distances.diagonal() == 0).all()


def test_small_distances_survive_large_norms():
    # the |x|^2 + |y|^2 - 2xy shortcut loses 1e-3 gaps between embeddings of norm 10
    x = torch.full((40, 128), 10.0 / 128**0.5)
    x[1:, 0] += 1e-3 * torch.arange(1, 40)
    distances = pairwise_distances(x)
    assert torch.allclose(distances[0, 1:], 1e-3 * torch.arange(1, 40), rtol=1e-2)


def test_gradient_is_finite_with_duplicate_rows():
    x = torch.randn(6, 3)
    x = torch.cat([x, x[:2]]).requires_grad_()  # rows 6, 7 repeat rows 0, 1: zero distances
    pairwise_distances(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_bad_shape():
    with pytest.raises(ValueError, match=r"embeddings must be \(N, D\), got shape \(2, 3, 4\)"):
        pairwise_distances(torch.zeros(2, 3, 4))
