"""The generation engine: a model loaded for evaluation, decoded in continuous batches.

``generation`` loads a model and turns prompts into completions, ``decoder``
runs the batched greedy/sampled loop over ``kv_cache`` slots with
``prompt_lookup`` drafts, ``packed_linear`` speeds the CPU's matrix products.
"""
