"""Logging is configured once, here, by the CLI; modules use logging.getLogger(__name__)."""

from __future__ import annotations

import logging
import os


def configure(verbosity: int = 0) -> None:
    level = logging.WARNING - 10 * verbosity if verbosity else logging.INFO
    level = int(os.environ.get("SFTMIX_LOG_LEVEL", level))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
