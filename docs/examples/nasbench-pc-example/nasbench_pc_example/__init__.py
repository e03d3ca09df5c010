"""nasbench-pc-example: a plugin package for nasbench-pc, written as any outside package would be.

It imports only nasbench-pc's public names and registers four plugins through the ``nasbench_pc`` entry-point
group (see ``pyproject.toml``): the ``random-partial`` channel sampler, the ``pc-random`` method that uses it, the
``param-count`` evaluator and a ``metrics.csv`` run log. docs/plugins.md walks through every file.
"""
