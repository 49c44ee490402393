"""The CPU lab: a synthetic three-ability study small enough to run end to end on a laptop.

Its generators (``sftmix.lab.generators``) write maths, code and general data in
the ordinary source and benchmark formats, so the rest of sftmix runs on the lab
exactly as on real data.
"""
