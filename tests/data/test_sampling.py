"""Nested, exact, deterministic sampling: properties over arbitrary sizes, amounts and seeds."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftmix.data.sampling import amount_count, derive_seed, nested_indices, proportional_counts

sizes = st.integers(min_value=0, max_value=400)
seeds = st.integers(min_value=0, max_value=2**63 - 1)
fractions = st.fractions(min_value=0, max_value=5, max_denominator=512)


@settings(max_examples=150, deadline=None)
@given(n=sizes, f1=fractions, f2=fractions, seed=seeds)
def test_smaller_fraction_is_a_prefix_of_the_larger(n: int, f1: Fraction, f2: Fraction, seed: int) -> None:
    small, large = sorted((f1, f2))
    a = nested_indices(n, float(small), seed)
    b = nested_indices(n, float(large), seed)
    assert b[: len(a)] == a


@settings(max_examples=150, deadline=None)
@given(n=sizes, f=fractions, seed=seeds)
def test_fraction_count_is_exact_and_rounded_half_up(n: int, f: Fraction, seed: int) -> None:
    idx = nested_indices(n, float(f), seed)
    expected = 0 if n == 0 or f == 0 else max(1, int(Fraction(repr(float(f))) * n + Fraction(1, 2)))
    assert len(idx) == expected
    assert all(0 <= i < n for i in idx)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=1, max_value=300), count=st.integers(min_value=0, max_value=1500), seed=seeds)
def test_counts_are_exact_and_upsample_by_whole_copies(n: int, count: int, seed: int) -> None:
    idx = nested_indices(n, count, seed, kind="count")
    assert len(idx) == count
    copies, rest = divmod(count, n)
    tally = [idx.count(i) for i in range(n)]
    # every record appears `copies` times, `rest` of them once more
    assert sorted(tally) == [copies] * (n - rest) + [copies + 1] * rest
    # the remainder is the seeded nested subset of the same size
    assert idx[copies * n :] == nested_indices(n, rest, seed, kind="count")


@settings(max_examples=100, deadline=None)
@given(n=sizes, f=fractions, seed=seeds)
def test_deterministic_for_a_seed(n: int, f: Fraction, seed: int) -> None:
    assert nested_indices(n, float(f), seed) == nested_indices(n, float(f), seed)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=1, max_value=400), seed=seeds)
def test_fraction_one_is_a_permutation_without_repeats(n: int, seed: int) -> None:
    assert sorted(nested_indices(n, 1.0, seed)) == list(range(n))


def test_paper_fractions_are_nested_and_seed_matters() -> None:
    fr = [1 / 256, 1 / 64, 1 / 16, 1 / 4, 1]
    subsets = [set(nested_indices(7473, f, 7)) for f in fr]
    assert [len(s) for s in subsets] == [29, 117, 467, 1868, 7473]
    assert all(a < b for a, b in itertools.pairwise(subsets))
    assert nested_indices(7473, 1 / 64, 7) != nested_indices(7473, 1 / 64, 8)


def test_rounding_rule_edges() -> None:
    assert amount_count(5, 0.5) == 3  # 2.5 rounds half up
    assert amount_count(100, 0.29) == 29  # 28.999999999999996 in floats, 29 exactly
    assert amount_count(1000, 1e-9) == 1  # a non-zero amount never gives nothing
    assert amount_count(0, 3.0) == 0
    assert amount_count(10, 0) == 0
    assert amount_count(10, 2.55) == 26
    with pytest.raises(ValueError):
        amount_count(10, -1)
    with pytest.raises(ValueError):
        amount_count(10, 2.5, "count")


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=5),
       data=st.data())
def test_proportional_counts_sum_to_total_and_respect_sizes(sizes: list[int], data: st.DataObject) -> None:
    props = data.draw(st.lists(st.integers(min_value=1, max_value=9), min_size=len(sizes),
                               max_size=len(sizes)))
    counts = proportional_counts(sizes, props)
    assert all(c <= s for c, s in zip(counts, sizes, strict=True))
    total = sum(counts)
    assert proportional_counts(sizes, props, total) == counts
    for c, p in zip(counts, props, strict=True):
        assert abs(c - Fraction(p, sum(props)) * total) < 1


def test_equal_proportions_and_derived_seeds() -> None:
    assert proportional_counts([7473, 2015, 300], [1, 1, 1]) == [300, 300, 300]
    assert proportional_counts([100, 50], [1, 3], 10) == [3, 7]  # 2.5 / 7.5: tie to the earlier
    assert derive_seed(0, "source", "gsm8k") == derive_seed(0, "source", "gsm8k")
    assert derive_seed(0, "source", "gsm8k") != derive_seed(0, "source", "code")
