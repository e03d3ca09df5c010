"""The chain search space: a nasbench-pc search space plugin that lives outside nasbench-pc.

A cell is a chain of ``steps`` edges: node 0 is the cell input, node i is edge i applied to node i-1,
and the last node is the cell output. ``layers`` such cells follow a 3x3 stem at one width, then a
pooled linear classifier. The package uses only public nasbench-pc names (``hookimpl``,
``interfaces``, ``mixed_op``, ``errors``, ``plots``) and registers itself through the ``nasbench_pc``
entry-point group (see ``pyproject.toml`` and :mod:`chain_space.space`).
"""
