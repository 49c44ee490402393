"""sftmix: how much of which SFT data, in what mix and order, so that no ability eats another."""

__version__ = "0.1.0"
