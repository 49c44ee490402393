"""The benchmarks: one module per task (GSM8K, MATH, HumanEval/MBPP, IFEval, MT-Bench).

Each module registers its tasks in :data:`sftmix.eval.base.TASKS`.
"""
