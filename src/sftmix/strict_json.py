"""Strict JSON for every file sftmix writes: a missing number is ``null``, never ``NaN``.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which strict parsers
(browsers, ``jq``, most other languages) reject. :func:`dumps` writes with
``allow_nan=False`` and turns non-finite floats (NumPy's included) into ``null``.
Readers of these files treat ``null`` as a missing value.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (containers copied)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return finite(obj.item())  # a NumPy scalar
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that always yields strict JSON (see the module docstring)."""
    kwargs["allow_nan"] = False
    try:
        return json.dumps(obj, **kwargs)
    except ValueError:  # a non-finite float somewhere: the rare case pays for the copy
        return json.dumps(finite(obj), **kwargs)
