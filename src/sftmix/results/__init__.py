"""A study's results as one object: what it measured and what it recorded when it ran."""
