"""Prompt-lookup drafts and the choice of how many tokens a forward pass carries."""

from __future__ import annotations

from sftmix.eval.engine.prompt_lookup import PRIOR_ACCEPT, NgramLookup, choose_width


def test_draft_follows_the_latest_earlier_match() -> None:
    lookup = NgramLookup([5, 6, 7, 8, 9, 1, 6, 7, 3, 4, 2])
    lookup.extend([6, 7])
    # The suffix (2-gram 6 7) last occurred before the end at positions 6-7, followed by 3 4 2.
    assert lookup.draft(2) == [3, 4]
    assert lookup.draft(10) == [3, 4, 2, 6, 7]
    lookup.extend([3])
    # The 3-gram 6 7 3 wins over the shorter suffixes.
    assert lookup.draft(3) == [4, 2, 6]
    assert lookup.draft(0) == []


def test_no_draft_without_a_repeated_ngram() -> None:
    lookup = NgramLookup([1, 2, 3])
    assert lookup.draft(4) == []
    lookup.extend([9, 3])  # a lone repeated token is not enough
    assert lookup.draft(4) == []


def test_acceptance_estimate_moves_towards_observed_rate() -> None:
    lookup = NgramLookup([1])
    assert lookup.accept == PRIOR_ACCEPT
    for _ in range(20):
        lookup.record(4, 4)
    assert lookup.accept > 0.99
    lookup.record(0, 0)  # nothing proposed: no evidence
    assert lookup.accept > 0.99
    for _ in range(20):
        lookup.record(4, 0)
    assert lookup.accept < 0.01


def test_width_weighs_expected_gain_against_cost() -> None:
    # One row that always accepts, a large fixed cost: verify the whole draft.
    assert choose_width([[1] * 8], [1.0], fixed_cost=8.0) == 9
    # A full batch of doubtful drafts: one token per row.
    assert choose_width([[1] * 8] * 32, [0.4] * 32, fixed_cost=8.0) == 1
    # No drafts at all.
    assert choose_width([[], []], [0.9, 0.9], fixed_cost=8.0) == 1
    # A draft longer than the others is only partly verified when the rest add cost.
    # Expected tokens per cost unit, (rows + gains) / (fixed + rows * width), by hand:
    # p = 0.6: width 1: 2/10 = .200, 2: 3.2/12 = .267, 3: 3.56/14 = .254  -> 2;
    # p = 0.9: 2: 3.8/12 = .317, 3: 4.61/14 = .329, 4: 5.339/16 = .334,
    #          5: 5.995/18 = .333                                          -> 4.
    assert choose_width([[1] * 8, [1]], [0.6, 0.6], fixed_cost=8.0) == 2
    assert choose_width([[1] * 8, [1]], [0.9, 0.9], fixed_cost=8.0) == 4
