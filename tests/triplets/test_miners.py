"""Each vectorised miner against a brute-force loop over all triplets of the batch."""

import pytest
import torch

from labkit.triplets import batch_hard, batch_semi_hard, pairwise_distances


def _batch(seed: int, n: int = 24, dim: int = 3, num_classes: int = 4, grid: bool = False):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    if grid:  # integer coordinates: many equal distances
        return torch.randint(0, 3, (n, dim), generator=g).float(), labels
    return torch.randn(n, dim, generator=g), labels


def _as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets), strict=True))


def _brute_batch_hard(embeddings, labels):
    d, labels, n = pairwise_distances(embeddings).tolist(), labels.tolist(), len(labels)
    triplets = set()
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        if positives and negatives:
            p = max(positives, key=lambda j: (d[a][j], -j))  # farthest; lowest index on ties
            q = min(negatives, key=lambda j: (d[a][j], j))  # nearest; lowest index on ties
            triplets.add((a, p, q))
    return triplets


def _brute_semi_hard(embeddings, labels, margin, anchors=None):
    d, labels, n = pairwise_distances(embeddings).tolist(), labels.tolist(), len(labels)
    triplets = set()
    for a in range(n) if anchors is None else anchors:
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            best = None
            for q in range(n):
                if labels[q] == labels[a] or not d[a][p] < d[a][q] < d[a][p] + margin:
                    continue
                if best is None or d[a][q] < d[a][best]:
                    best = q
            if best is not None:
                triplets.add((a, p, best))
    return triplets


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("grid", [False, True])
def test_batch_hard_matches_brute_force(seed, grid):
    embeddings, labels = _batch(seed, grid=grid)
    assert _as_set(batch_hard(embeddings, labels)) == _brute_batch_hard(embeddings, labels)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("grid", "margin"), [(False, 0.5), (False, 2.0), (True, 1.0)])
def test_semi_hard_matches_brute_force(seed, grid, margin):
    embeddings, labels = _batch(seed, grid=grid)
    mined = batch_semi_hard(embeddings, labels, margin)
    expected = _brute_semi_hard(embeddings, labels, margin)
    assert expected  # the case is not vacuous
    assert _as_set(mined) == expected
    assert len(mined[0]) == len(expected)  # no duplicates


def test_semi_hard_drops_pairs_without_a_semi_hard_negative():
    # 1-D: anchor 0 at 0, positive at 1; negatives at 0.5 (hard) and 3 (easy): none in (1, 1.5)
    embeddings = torch.tensor([[0.0], [1.0], [0.5], [3.0]])
    labels = torch.tensor([0, 0, 1, 2])
    a, p, n = batch_semi_hard(embeddings, labels, margin=0.5)
    assert (0, 1) not in set(zip(a.tolist(), p.tolist(), strict=True))
    a, p, n = batch_semi_hard(embeddings, labels, margin=2.5)  # now 3 lies in (1, 3.5)
    assert (0, 1, 3) in _as_set((a, p, n))


def test_semi_hard_at_large_n_matches_reference_on_a_subsample():
    # an (N, N, N) mask at N = 1500 has 3.4e9 entries (int32 indexing overflows past ~1,290)
    embeddings, labels = _batch(0, n=1500, dim=4, num_classes=10)
    triplets = batch_semi_hard(embeddings, labels, margin=0.3)
    anchors = list(range(0, 1500, 150))
    mined = {t for t in _as_set(triplets) if t[0] in anchors}
    assert mined == _brute_semi_hard_rows(embeddings, labels, 0.3, anchors)
    assert len(triplets[0]) > 10_000


def _brute_semi_hard_rows(embeddings, labels, margin, anchors):
    # the same rule as _brute_semi_hard, one anchor-positive pair at a time over tensors
    d = pairwise_distances(embeddings)
    triplets = set()
    for a in anchors:
        negative = labels != labels[a]
        for p in torch.nonzero(labels == labels[a]).flatten().tolist():
            if p == a:
                continue
            ok = negative & (d[a] > d[a, p]) & (d[a] < d[a, p] + margin)
            if ok.any():
                q = torch.where(ok, d[a], torch.inf).argmin().item()
                triplets.add((a, p, q))
    return triplets


def test_miners_return_indices_without_gradients():
    embeddings, labels = _batch(1)
    embeddings.requires_grad_()
    for triplets in [batch_hard(embeddings, labels), batch_semi_hard(embeddings, labels, 1.0)]:
        assert all(t.dtype == torch.int64 and not t.requires_grad for t in triplets)


def test_anchors_without_positive_or_negative_are_dropped():
    embeddings = torch.randn(5, 2)
    a, _, _ = batch_hard(embeddings, torch.tensor([0, 0, 1, 2, 2]))
    assert a.tolist() == [0, 1, 3, 4]  # image 2 is alone in its class
    for labels in [torch.zeros(5, dtype=torch.long), torch.arange(5)]:
        assert len(batch_hard(embeddings, labels)[0]) == 0
        assert len(batch_semi_hard(embeddings, labels, 1.0)[0]) == 0


def test_bad_input():
    with pytest.raises(ValueError, match=r"need embeddings \(N, D\) and labels \(N,\)"):
        batch_hard(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="semi-hard mining needs margin > 0.*got 0"):
        batch_semi_hard(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), 0)
