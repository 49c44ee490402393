"""Shared fixtures. Real data lives in ../shared/data next to the checkout (SFTMIX_SHARED_DATA overrides)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("SFTMIX_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not path.is_dir():
        raise RuntimeError(
            f"real test data not found at {path}; set SFTMIX_SHARED_DATA to the shared/data folder"
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


def paper_data_env(shared: Path) -> dict[str, str]:
    """The paper configs' variables pointed at the shared data (without them the configs read
    data/paper, which ``sftmix data get`` writes)."""
    return {"SFTMIX_MATHS_DATA": str(shared / "gsm8k" / "train.jsonl"),
            "SFTMIX_CODE_DATA": str(shared / "code" / "code_alpaca_2k.json"),
            "SFTMIX_GENERAL_DATA": str(shared / "general" / "sharegpt_dpo_chosen.json"),
            "SFTMIX_EVAL_DIR": str(shared)}


@pytest.fixture
def paper_data(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper configs read the shared data."""
    for name, value in paper_data_env(shared_data).items():
        monkeypatch.setenv(name, value)
