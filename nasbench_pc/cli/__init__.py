"""The ``nasbench-pc`` command line (click + rich).

Each group of subcommands lives in a module of this package named after its commands (``methods``, ``search``,
``compare``, ``bench`` (and ``plan``), ``evaluate``, ``show``, ``train``, ``export``) and is attached here to
:func:`main` (the group itself is in ``_main``).
Errors a user can cause are :class:`NasbenchError`s: printed as one paragraph, exit code
``exc.exit_code`` (2, or 128 + signal for a run stopped by a signal), no traceback unless ``--debug``.
A plugin that failed to load costs one warning line per command, not the command (``nasbench-pc plugins``
says why); ``--plugin MODULE`` loads a plugin module that has no entry point.
"""

from nasbench_pc import _moved
from nasbench_pc.cli import bench, compare, evaluate, export, methods, search, show, train
from nasbench_pc.cli._main import main

for _module in (methods, show, train, export, search, compare, bench, evaluate):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__getattr__ = _moved.old_names(__name__, {name: f"nasbench_pc.cli._main:{name}"  # before issue 21
                                           for name in ("Group", "report_error", "warn_failed_plugins")})

__all__ = ["main"]
