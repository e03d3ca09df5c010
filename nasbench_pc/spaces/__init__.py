"""Search spaces, one package each: a space owns its cell, supernet, genotype and derived network."""
