"""The ``nasbench-pc`` command line (click + rich).

Each group of subcommands lives in a module of this package named after its commands (``methods``,
``search``, ``compare``, ``show``, ``train``, ``export``) and is attached to :func:`main` at the bottom.
Errors a user can cause are :class:`NasbenchError`s: printed as one paragraph, exit code
``exc.exit_code`` (2, or 128 + signal for a run stopped by a signal), no traceback unless ``--debug``.
"""

from __future__ import annotations

import sys

import click
from rich.panel import Panel

from nasbench_pc.console import err_console
from nasbench_pc.errors import NasbenchError


def report_error(exc: NasbenchError) -> None:
    err_console.print(Panel(str(exc), title="[bold red]error", border_style="red", expand=False))


class Group(click.Group):
    """Turns NasbenchError into a clean message instead of a traceback (``--debug`` shows it too)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NasbenchError as exc:
            if ctx.params.get("debug"):
                err_console.print_exception()
            report_error(exc)
            sys.exit(exc.exit_code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nasbench-pc")
@click.option("--debug", is_flag=True, help="Also print the traceback of an error (for bug reports).")
def main(debug: bool) -> None:
    """nasbench-pc: DARTS, PC-DARTS and their ablations as plugins of one search harness."""


def _attach() -> None:
    from nasbench_pc.cli import compare, export, methods, search, show, train

    for module in (methods, show, train, export, search, compare):
        for command in module.COMMANDS:
            main.add_command(command)


_attach()
