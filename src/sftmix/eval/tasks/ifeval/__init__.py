"""Verifiable instruction following (IFEval style): the checkers and the task."""
