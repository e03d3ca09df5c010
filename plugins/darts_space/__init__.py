"""The DARTS cell search space (Liu et al., 2019): ops, genotype, supernet, derived network, renderings.
Registered by :mod:`.space`, like any outside space plugin."""
