"""Studies: a grid of fine-tunes and evaluations described in one file, planned, executed, stored."""
