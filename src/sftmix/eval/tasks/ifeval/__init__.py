"""Verifiable instruction following (IFEval style): checkers, the task, and a prompt generator."""
