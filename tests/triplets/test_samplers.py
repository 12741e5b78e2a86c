"""Random / chosen-class triplets, TripletSampler and PKSampler: invariants, frequencies, errors."""

from collections import Counter

import numpy as np
import pytest
import torch

from labkit.triplets import PKSampler, TripletSampler, random_triplets
from labkit.triplets.samplers import _chosen_class_triplets as chosen_class_triplets

# class sizes 2, 3, 10, 50, 1 (class 4 has one image: never an anchor, may be a negative)
LABELS = np.repeat(np.arange(5), [2, 3, 10, 50, 1])
rng = np.random.default_rng(0)
LABELS = LABELS[rng.permutation(len(LABELS))]  # classes interleaved, as in a real dataset


def _check_triplets(triplets, labels, num_triplets):
    a, p, n = triplets
    assert all(t.dtype == torch.int64 and t.shape == (num_triplets,) for t in triplets)
    assert (a != p).all()
    assert (labels[a] == labels[p]).all()
    assert (labels[a] != labels[n]).all()


def test_random_triplets_invariants_and_uniform_classes():
    triplets = random_triplets(LABELS, 20_000, seed=1)
    _check_triplets(triplets, LABELS, 20_000)
    a, p, n = (t.numpy() for t in triplets)
    positive_classes = Counter(LABELS[a].tolist())
    negative_classes = Counter(LABELS[n].tolist())
    # positive class uniform over the 4 classes with two images; negative uniform over the
    # 4 other classes: P(neg = c) = 3/16 for c < 4 and 4/16 for the one-image class 4
    assert set(positive_classes) == {0, 1, 2, 3}
    assert all(abs(positive_classes[c] - 5000) < 300 for c in range(4))
    assert all(abs(negative_classes[c] - 3750) < 300 for c in range(4))
    assert abs(negative_classes[4] - 5000) < 300
    # every ordered pair of class 0's two images appears, both ways round
    pairs = {(int(i), int(j)) for i, j in zip(a, p, strict=True) if LABELS[i] == 0}
    first, second = np.flatnonzero(LABELS == 0)
    assert pairs == {(first, second), (second, first)}


def test_random_triplets_are_deterministic_under_a_seed():
    same = [random_triplets(LABELS, 50, seed=3), random_triplets(LABELS, 50, seed=3)]
    assert all(torch.equal(x, y) for x, y in zip(*same, strict=True))
    other = random_triplets(LABELS, 50, seed=4)
    assert not torch.equal(same[0][0], other[0])
    generator = random_triplets(LABELS, 50, seed=np.random.default_rng(3))
    assert all(torch.equal(x, y) for x, y in zip(same[0], generator, strict=True))
    torch.manual_seed(0)
    first = random_triplets(LABELS, 50, seed=None)  # seeded from torch's generator
    torch.manual_seed(0)
    assert torch.equal(first[0], random_triplets(LABELS, 50, seed=None)[0])


def test_chosen_class_triplets():
    a, p, n = chosen_class_triplets(LABELS, 200, positive_class=2, negative_class=3, seed=0)
    _check_triplets((a, p, n), LABELS, 200)
    assert set(LABELS[a].tolist()) == {2} and set(LABELS[n].tolist()) == {3}
    assert len(set(a.tolist())) == 10  # all of class 2's images serve as anchors


def test_chosen_classes_may_be_several():
    triplets = chosen_class_triplets(LABELS, 4000, [0, 1], [1, 4], seed=0)
    _check_triplets(triplets, LABELS, 4000)
    a, _, n = (LABELS[t.numpy()] for t in triplets)
    assert set(a.tolist()) == {0, 1}
    assert set(n[a == 1].tolist()) == {4}  # never class 1 against itself
    share = Counter(n[a == 0].tolist())
    assert abs(share[1] - share[4]) < 0.15 * (a == 0).sum()


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        (
            [3, 3, 3],
            {},
            "triplets need at least two classes .* every label is 3; pass the labels of a multi",
        ),
        ([0, 1, 2], {}, r"no class has two images \(3 classes of one image each\)"),
        (LABELS, {"num_triplets": 0}, "num_triplets must be an int >= 1, got 0"),
        (LABELS, {"num_triplets": 2.5}, "num_triplets must be an int >= 1, got 2.5"),
        (np.zeros((2, 3), dtype=int), {}, "labels must be a non-empty 1-D array of int"),
        (np.array([0.0, 1.0]), {}, "labels must be a non-empty 1-D array of int"),
    ],
)
def test_random_triplets_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_triplets(labels, **{"num_triplets": 10, **kwargs})


@pytest.mark.parametrize(
    ("positive", "negative", "match"),
    [
        (7, 1, r"unknown positive_class 7; the known classes are 0, 1, 2, 3, 4"),
        (1, -1, r"unknown negative_class -1; the known classes are 0, 1, 2, 3, 4"),
        (4, 1, "positive_class 4 has only one image; anchor and positive need two distinct"),
        (2, 2, "negative_class 2 is also a positive_class; .* choose two different classes"),
        ([], 2, "positive_class is empty"),
    ],
)
def test_chosen_class_bad_input(positive, negative, match):
    with pytest.raises(ValueError, match=match):
        chosen_class_triplets(LABELS, 10, positive, negative)


def test_triplet_sampler_draws_fresh_triplets_each_epoch():
    sampler = TripletSampler(LABELS, 40)
    torch.manual_seed(0)
    epochs = [list(sampler), list(sampler)]
    assert len(sampler) == len(epochs[0]) == 40
    assert epochs[0] != epochs[1]
    assert all(isinstance(t, tuple) and len(t) == 3 for t in epochs[0])
    torch.manual_seed(0)  # seed=None follows torch's global generator: replayable
    assert [list(sampler), list(sampler)] == epochs
    seeded = [TripletSampler(LABELS, 40, seed=5) for _ in range(2)]
    assert [list(seeded[0]) for _ in range(2)] == [list(seeded[1]) for _ in range(2)]
    chosen = TripletSampler(LABELS, 40, positive_class=1, negative_class=0, seed=0)
    assert {(LABELS[a], LABELS[n]) for a, _, n in chosen} == {(1, 0)}
    against_3 = TripletSampler(LABELS, 400, negative_class=3, seed=0)  # any positive but 3
    assert {(LABELS[a], LABELS[n]) for a, _, n in against_3} == {(0, 3), (1, 3), (2, 3)}
    with pytest.raises(ValueError, match="no class besides negative_class 1 has two images"):
        TripletSampler([0, 1, 1, 2], 10, negative_class=1)


def _pk_labels():
    return np.repeat(np.arange(6), [8, 5, 6, 7, 9, 1])  # class 5: one image


def test_pk_batches_hold_p_classes_of_k_distinct_images():
    labels = _pk_labels()
    sampler = PKSampler(labels, p=3, k=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == (8 + 5 + 6 + 7 + 9) // 12
    for batch in batches:
        assert len(batch) == 12 and len(set(batch)) == 12
        counts = Counter(labels[batch].tolist())
        assert len(counts) == 3 and set(counts.values()) == {4}
        assert 5 not in counts
    many = PKSampler(labels, p=2, k=2, batches_per_epoch=200, seed=0)
    seen = Counter(c for batch in many for c in labels[batch].tolist())
    assert set(seen) == {0, 1, 2, 3, 4}  # every usable class, never the one-image class
    assert all(abs(v / 2 - 80) < 25 for v in seen.values())  # P/5 of 200 batches each


def test_pk_sampler_replace_repeats_only_small_classes():
    labels = _pk_labels()
    sampler = PKSampler(labels, p=5, k=7, batches_per_epoch=3, replace=True, seed=0)
    for batch in sampler:
        by_class = {c: [i for i in batch if labels[i] == c] for c in range(5)}
        assert all(len(v) == 7 for v in by_class.values())
        assert all(len(set(by_class[c])) == 7 for c in (0, 3, 4))  # 8, 7, 9 images: no repeats
        assert len(set(by_class[1])) <= 5


def test_pk_sampler_follows_torch_seed():
    sampler = PKSampler(_pk_labels(), p=2, k=3)
    torch.manual_seed(1)
    first = list(sampler)
    torch.manual_seed(1)
    assert list(sampler) == first


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        ([1] * 10, {}, "triplets need at least two classes"),
        (list(range(10)), {}, "no class has two images"),
        (
            _pk_labels(),
            {"k": 6},
            r"k=6 is larger than class 1, which has 5 images; pass replace=True .* or k <= 5",
        ),
        (
            _pk_labels(),
            {"p": 6},
            r"p=6 is larger than the number of classes with at least two images \(5\)",
        ),
        (_pk_labels(), {"p": 1}, "p must be an int >= 2, got 1"),
        (_pk_labels(), {"k": 1}, "k must be an int >= 2, got 1"),
        (_pk_labels(), {"batches_per_epoch": 0}, "batches_per_epoch must be an int >= 1, got 0"),
    ],
)
def test_pk_sampler_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PKSampler(labels, **{"p": 2, "k": 2, **kwargs})


# class sizes below, at and above K = 6 (class 0 has one image: it never takes part)
SIZES = (1, 4, 5, 6, 7, 12)


def _sized_labels(sizes):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return labels[np.random.default_rng(1).permutation(len(labels))]  # classes interleaved


@pytest.mark.parametrize("replace", [False, True])
def test_pk_sampler_every_class_size_below_at_and_above_k(replace):
    k = 6
    # without replace a class smaller than K is refused; with it every size takes part
    sizes = SIZES if replace else tuple(s for s in SIZES if s == 1 or s >= k)
    labels = _sized_labels(sizes)
    p = len(sizes) - 1  # every usable class in every batch
    sampler = PKSampler(labels, p=p, k=k, batches_per_epoch=50, replace=replace, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 50
    small_seen_all = Counter()
    for batch in batches:
        assert len(batch) == p * k
        by_class = Counter(labels[batch].tolist())
        assert len(by_class) == p and set(by_class.values()) == {k}  # P classes x K images
        assert 0 not in by_class  # the one-image class gives no positive
        for c, size in enumerate(sizes):
            if size < 2:
                continue
            images = [i for i in batch if labels[i] == c]
            assert images == batch[batch.index(images[0]) :][:k]  # grouped by class
            if size >= k:  # distinct images, with or without replace
                assert len(set(images)) == k
            else:  # repeats, but every image of the class at least once, none thrice for 4
                assert set(images) == set(np.flatnonzero(labels == c).tolist())
                assert max(Counter(images).values()) == -(-k // size)
                small_seen_all[c] += 1
    assert set(small_seen_all) == ({1, 2} if replace else set())
    again = PKSampler(labels, p=p, k=k, batches_per_epoch=50, replace=replace, seed=0)
    assert list(again) == batches  # deterministic with a seed
    other = PKSampler(labels, p=p, k=k, batches_per_epoch=50, replace=replace, seed=1)
    assert list(other) != batches


def test_pk_sampler_replace_with_every_class_smaller_than_k():
    # the remedy the k-too-large error names: classes of 4 images, k=6, replace=True
    labels = np.repeat(np.arange(10), 4)
    sampler = PKSampler(labels, p=8, k=6, replace=True, seed=0)
    for batch in sampler:
        counts = Counter(labels[batch].tolist())
        assert len(counts) == 8 and set(counts.values()) == {6}
        assert len(set(batch)) == 8 * 4  # every image of each class, two of them twice
    with pytest.raises(ValueError, match="k=6 is larger than class 0, which has 4 images"):
        PKSampler(labels, p=8, k=6)
