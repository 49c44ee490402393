"""Evaluation: generation, answer extraction, sandboxed code execution, judges, statistics."""
