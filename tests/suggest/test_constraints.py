"""Budgets, floors and scenarios as a user writes them: parsed, or refused with the flag named."""

from __future__ import annotations

import pytest

from sftmix.errors import SftmixError
from sftmix.suggest.constraints import Constraints, parse_floors, parse_scenario, parse_tokens

ABILITIES = ["maths", "code", "general"]


def test_tokens() -> None:
    assert parse_tokens("5M") == 5e6 and parse_tokens("2.5k") == 2500 and parse_tokens("7") == 7
    assert parse_tokens(None) is None


@pytest.mark.parametrize("text", ["nan", "inf", "-5", "0", "lots", "nanM", "-infk"])
def test_tokens_must_be_finite_and_positive(text: str) -> None:
    with pytest.raises(SftmixError, match="--run-budget"):
        parse_tokens(text, "--run-budget")


def test_floors() -> None:
    assert parse_floors(["maths=0.5", "code=0.25,general=6"], ABILITIES) == {"maths": 0.5, "code": 0.25,
                                                                             "general": 6.0}


@pytest.mark.parametrize(("texts", "message"), [
    (["poetry=0.5"], "'poetry=0.5' is not '<ability>=<score>'"),
    (["maths"], "'maths' is not '<ability>=<score>'"),
    (["maths=nan"], "the floor of 'maths' must be a finite scaled score"),
    (["maths=high"], "the floor of 'maths' must be a finite scaled score"),
    (["maths=0.5", "maths=0.6"], "'maths' has two floors"),
])
def test_bad_floors_are_named(texts: list[str], message: str) -> None:
    with pytest.raises(SftmixError, match="--floor") as err:
        parse_floors(texts, ABILITIES)
    assert message in str(err.value)


def test_scenario_line() -> None:
    sc = parse_scenario("weights=general=1;budget=0.3;floor=maths=0.5,code=0.2", ABILITIES)
    assert sc.weights == {"maths": 0.0, "code": 0.0, "general": 1.0}
    assert sc.budget_fraction == 0.3 and sc.budget_tokens is None
    assert sc.floors == {"maths": 0.5, "code": 0.2} and sc.constrained
    assert sc.name == "wgeneral1_b0.3_maths>=0.5_code>=0.2"
    cons = sc.constraints(all_data_tokens=1e6)
    assert cons == Constraints(3e5, {"maths": 0.5, "code": 0.2})
    named = parse_scenario("name=cheap;budget=2M", ABILITIES)
    assert named.name == "cheap" and named.budget_tokens == 2e6 and named.weights == dict.fromkeys(ABILITIES, 1.0)
    assert named.constraints(1e9).budget == 2e6
    assert not parse_scenario("weights=maths=3", ABILITIES).constrained


@pytest.mark.parametrize(("text", "message"), [
    ("weights=maths=1;cost=3", "'cost=3' in"),
    ("budget=0.3;budget=0.4", "'budget' is given twice"),
    ("budget=nan", "expected a fraction > 0"),
    ("budget=-0.2", "expected a fraction > 0"),
    ("budget=nanM", "expected a finite number of tokens"),
    ("weights=maths=1,maths=5", "'maths' is given twice"),
    ("weights=maths=1e308,code=1e308", "their sum finite"),
    ("floor=maths=inf", "the floor of 'maths' must be a finite scaled score"),
])
def test_bad_scenarios_are_named(text: str, message: str) -> None:
    with pytest.raises(SftmixError) as err:
        parse_scenario(text, ABILITIES)
    assert message in str(err.value)


def test_constraints() -> None:
    cons = Constraints(1e6, {"maths": 0.5})
    assert cons.fits(1e6) and not cons.fits(1e6 + 1)
    assert cons.meets({"maths": 0.5, "code": 0.0}) and not cons.meets({"maths": 0.49})
    assert Constraints().fits(1e30) and Constraints().describe() == "none"
    assert cons.describe() == "at most 1.00M training tokens, maths >= 0.5"
