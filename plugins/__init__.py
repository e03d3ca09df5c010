"""Built-in plugins, installed as ``nasbench_pc.plugins`` and registered through the same
``nasbench_pc`` entry-point group an outside package uses (see pyproject.toml)."""
