"""Secrets are split from options at any depth and merged back only from the environment."""

from __future__ import annotations

import json

import pytest

from sftmix import secrets


def test_split_and_merge_are_inverse() -> None:
    options = {"path": "x", "judge": {"api_key": "k1", "model": "m"},
               "judges": [{"api_key": "k2"}, {"model": "n"}], "api_key": "k0"}
    shown, hidden = secrets.split(options)
    assert "k0" not in json.dumps(shown) and "k1" not in json.dumps(shown) and "k2" not in json.dumps(shown)
    assert shown == {"path": "x", "judge": {"model": "m"}, "judges": [{}, {"model": "n"}]}
    assert secrets.merge(shown, hidden) == options
    assert secrets.split({"path": "x"}) == ({"path": "x"}, None)


def test_workers_take_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, hidden = secrets.split({"judge": {"api_key": "k", "model": "m"}})
    env = secrets.to_env({"mtbench": hidden})
    monkeypatch.setenv(secrets.ENV, env[secrets.ENV])
    assert secrets.merged_from_env("mtbench", shown) == {"judge": {"api_key": "k", "model": "m"}}
    assert secrets.merged_from_env("gsm8k", {"limit": 2}) == {"limit": 2}
    assert secrets.to_env({}) == {}
