"""Supervised fine-tuning: tokenisation with exact loss masking, packing, the loss, and the loop."""
