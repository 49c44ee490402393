"""Evaluation: a task interface and runner over three concerns, each a subpackage.

``engine/`` generates completions, ``sandbox/`` executes model-written code,
``tasks/`` holds the benchmarks and their scoring; ``stats`` puts intervals on
every score.
"""
