"""Secrets (judge API keys) never reach disk: what is hashed or written passes through here.

A secret is any value under a key named in :data:`SECRET_KEYS`, at any depth of an
options tree. :func:`split` separates the public part (hashed, written to job files,
stores and summaries) from the secret part, which travels to worker processes only
through their environment (:data:`ENV`) and is merged back by :func:`merged_from_env`.
"""

from __future__ import annotations

import json
from typing import Any

SECRET_KEYS = frozenset({"api_key"})
ENV = "SFTMIX_SECRETS"


def public(value: Any) -> Any:
    """``value`` without any secret, as plain data."""
    return split(value)[0]


def split(value: Any) -> tuple[Any, Any]:
    """(public part, secret part); the secret part is None when there is none."""
    if isinstance(value, dict):
        shown: dict[str, Any] = {}
        hidden: dict[str, Any] = {}
        for key, item in value.items():
            if key in SECRET_KEYS:
                hidden[key] = item
                continue
            shown[key], secret = split(item)
            if secret is not None:
                hidden[key] = secret
        return shown, hidden or None
    if isinstance(value, list):
        parts = [split(v) for v in value]
        secrets = [s for _, s in parts]
        return [p for p, _ in parts], secrets if any(s is not None for s in secrets) else None
    return value, None


def merge(shown: Any, hidden: Any) -> Any:
    """The inverse of :func:`split`."""
    if hidden is None:
        return shown
    if isinstance(hidden, dict):
        out = dict(shown or {})
        for key, item in hidden.items():
            out[key] = merge(out.get(key), item) if key not in SECRET_KEYS else item
        return out
    if isinstance(hidden, list):
        return [merge(s, h) for s, h in zip(shown, hidden, strict=True)]
    return hidden


def to_env(secrets: dict[str, Any]) -> dict[str, str]:
    """Environment entries that carry ``secrets`` (name -> secret part) to a worker."""
    return {ENV: json.dumps(secrets)} if secrets else {}


def merged_from_env(name: str, shown: Any) -> Any:
    """``shown`` with the secret part that the environment holds for ``name``."""
    from sftmix.settings import current

    return merge(shown, current().secrets.get(name))
