"""Bilinear pooling and HBP's cross-layer interactions: the maths of the heads, on feature maps.

- `bilinear_pool`: BCNN's outer product of each location's features with themselves, averaged
  over the H x W locations (Lin, RoyChowdhury and Maji, ICCV 2015; handout 003).
- `hbp_interactions`: HBP's three 1x1 projections (with bias) of relu5_1, relu5_2 and relu5_3 to
  `d` channels, and for each pair of layers the element-wise product of the two projections
  summed over locations (Yu et al., ECCV 2018; handout 000).
- `signed_sqrt_l2`: the signed square root, then L2 normalisation, of a pooled vector (both
  papers).

`hbp_interactions` is an autograd function that keeps only the backbone's C-channel maps and
the projection weights for backward and recomputes the d-channel projections there, in chunks
of channels: the projections (d = 8,192 against C = 512) never stay alive between forward and
backward (`benchmarks/bench_hbp_head.py`).

Used in: 04_bcnn_hbp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PAIRS", "SQRT_EPS", "bilinear_pool", "hbp_interactions", "signed_sqrt_l2"]

SQRT_EPS = 1e-10  # inside the signed square root: a finite gradient at 0 (the HBP authors' value)
PAIRS = ((0, 1), (0, 2), (1, 2))  # relu5_1 x relu5_2, relu5_1 x relu5_3, relu5_2 x relu5_3


def signed_sqrt_l2(z: torch.Tensor, eps: float = SQRT_EPS) -> torch.Tensor:
    """sign(z) * sqrt(|z| + eps), then L2-normalised along the last dimension. (N, D) -> (N, D).

    The square root evens out the few very large entries of a bilinear vector (bursty
    features); the normalisation makes the classifier's input of unit length.
    """
    return F.normalize(torch.sign(z) * torch.sqrt(z.abs() + eps), dim=-1)


def bilinear_pool(x: torch.Tensor) -> torch.Tensor:
    """BCNN pooling of feature maps: the outer product of each location's feature vector with
    itself, averaged over locations. (N, C, H, W) -> (N, C * C), flattened row-major.

    Equals `(X @ X^T) / (H * W)` for X the (C, H*W) matrix of one sample. Computed in float32
    (float64 stays float64) also under autocast.
    """
    n, c, h, w = x.shape
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # a sum over every location of products overflows float16
    with torch.autocast(device_type=x.device.type, enabled=False):
        flat = x.reshape(n, c, h * w)
        return (torch.bmm(flat, flat.transpose(1, 2)) / (h * w)).reshape(n, c * c)


class _HBPInteractions(torch.autograd.Function):
    """Sum over locations of (W_a x_a + b_a) * (W_b x_b + b_b) for the three pairs of layers.

    Forward and backward loop over chunks of the d output channels; only the inputs and the
    weights are saved for backward, and each chunk's projections are recomputed there.
    """

    @staticmethod
    def forward(ctx, chunk: int, x0, x1, x2, w0, w1, w2, b0, b1, b2):  # noqa: D102
        xs, ws, bs = (x0, x1, x2), (w0, w1, w2), (b0, b1, b2)
        d = w0.shape[0]
        out = x0.new_empty(3, x0.shape[0], d)
        for start in range(0, d, chunk):
            stop = min(d, start + chunk)
            p = [
                _project(x, w[start:stop], b[start:stop])
                for x, w, b in zip(xs, ws, bs, strict=True)
            ]
            for k, (a, b) in enumerate(PAIRS):
                out[k, :, start:stop] = (p[a] * p[b]).sum(dim=2)
        ctx.chunk = chunk
        ctx.save_for_backward(*xs, *ws, *bs)
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x0, x1, x2, w0, w1, w2, b0, b1, b2 = ctx.saved_tensors
        xs, ws, bs = (x0, x1, x2), (w0, w1, w2), (b0, b1, b2)
        n, c, h, w = x0.shape
        flats = [x.reshape(n, x.shape[1], h * w) for x in xs]
        grad_x = [torch.zeros_like(f) for f in flats]
        grad_w = [torch.zeros_like(wk) for wk in ws]
        grad_b = [torch.zeros_like(bk) for bk in bs]
        d = w0.shape[0]
        for start in range(0, d, ctx.chunk):
            stop = min(d, start + ctx.chunk)
            p = [
                _project(x, wk[start:stop], bk[start:stop])
                for x, wk, bk in zip(xs, ws, bs, strict=True)
            ]
            grad_p = [torch.zeros_like(pk) for pk in p]
            for k, (a, b) in enumerate(PAIRS):
                g = grad_out[k, :, start:stop].unsqueeze(2)  # (N, chunk, 1): same at every location
                grad_p[a] += g * p[b]
                grad_p[b] += g * p[a]
            for i in range(3):
                grad_w[i][start:stop] += torch.einsum("ndl,ncl->dc", grad_p[i], flats[i])
                grad_b[i][start:stop] += grad_p[i].sum(dim=(0, 2))
                grad_x[i] += torch.einsum("dc,ndl->ncl", ws[i][start:stop], grad_p[i])
        grad_x = [g.reshape(x.shape) for g, x in zip(grad_x, xs, strict=True)]
        return (None, *grad_x, *grad_w, *grad_b)


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as a matrix product: (N, C, H, W) -> (N, d, H*W)."""
    n, c, h, w = x.shape
    return torch.einsum("dc,ncl->ndl", weight, x.reshape(n, c, h * w)) + bias[None, :, None]


def hbp_interactions(
    maps: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    biases: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    chunk: int = 1024,
) -> torch.Tensor:
    """HBP's three cross-layer interactions, summed over locations. Returns (3, N, d).

    Args:
        maps: three feature maps (N, C_k, H, W) of the same N, H, W (relu5_1, relu5_2, relu5_3).
        weights: three 1x1 projection weights (d, C_k); biases: three (d,).
        chunk: output channels computed at once (memory against speed).
    Computed in float32 (or float64) also under autocast: float16 and bfloat16 inputs are cast
    up first, and the result is float32.
    Raises ValueError for maps of different sizes or weights that do not match them.
    """
    if len({(m.shape[0], *m.shape[2:]) for m in maps}) != 1:
        raise ValueError(
            f"HBP maps must share batch and H x W, got {[tuple(m.shape) for m in maps]}"
        )
    if len({w.shape[0] for w in weights}) != 1 or any(
        w.shape[1] != m.shape[1] or b.shape != (w.shape[0],)
        for m, w, b in zip(maps, weights, biases, strict=True)
    ):
        raise ValueError("each HBP projection needs a weight (d, C_k) for its map and a bias (d,)")
    # float32 whatever autocast chose for the backbone: sums of d-channel products over every
    # location overflow float16; the maps' copies are small (C channels)
    with torch.autocast(device_type=maps[0].device.type, enabled=False):
        half = (torch.float16, torch.bfloat16)
        tensors = [t.float() if t.dtype in half else t for t in (*maps, *weights, *biases)]
        return _HBPInteractions.apply(chunk, *tensors)
