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
