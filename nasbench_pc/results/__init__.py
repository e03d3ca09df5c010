"""Reading what searches found: scoring architectures (``evaluation``), ranking them (``ranking``), comparing
methods over runs (``compare``) and plotting them (``plots``)."""
