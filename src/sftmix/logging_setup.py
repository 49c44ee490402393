"""Logging is configured once, here, by the CLI; modules use logging.getLogger(__name__)."""

from __future__ import annotations

import logging
import os


def configure(verbosity: int = 0) -> None:
    """INFO by default, DEBUG with ``-v``: then the libraries' own output is shown as well."""
    from sftmix.settings import current

    level = logging.DEBUG if verbosity else logging.INFO
    level = current().log_level or level
    if level > logging.DEBUG:
        # Loading and saving bars of transformers / huggingface_hub (read when they are
        # imported, so it reaches the worker processes of a study too).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # Libraries that log their own housekeeping at INFO (matplotlib: "generated new
    # fontManager" the first time it draws on a machine).
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
