"""Choosing a composition from few runs: response models, recommendations, the optimise loop, exports."""
