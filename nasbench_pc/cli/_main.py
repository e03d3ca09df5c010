"""The ``nasbench-pc`` group: error reporting, ``--debug``, ``--plugin`` and the failed-plugin warning."""

from __future__ import annotations

import sys

import click
from rich.markup import escape
from rich.panel import Panel

from nasbench_pc import registry
from nasbench_pc.console import err_console
from nasbench_pc.errors import NasbenchError
from nasbench_pc.settings import SettingError


def report_error(exc: NasbenchError) -> None:
    """One paragraph; a bad setting is named by its flag (``--lr-min``), as the user typed it."""
    text = exc.for_cli() if isinstance(exc, SettingError) else str(exc)
    # as written, never as rich markup: `pip install "nasbench-pc[slurm]"` keeps its [slurm]
    err_console.print(Panel(escape(text), title="[bold red]error", border_style="red", expand=False))


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
@click.option("--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help=f"Load the plugin module MODULE (a dotted import path, e.g. my_pkg.my_plugin, that need not be "
                   f"installed with an entry point) for this command; repeatable. It is handed to the worker "
                   f"processes of `compare --devices` through the environment variable {registry.PLUGINS_ENV} "
                   f"(comma-separated modules), which can also be set instead of --plugin.")
@click.pass_context
def main(ctx: click.Context, debug: bool, plugin_modules: tuple[str, ...]) -> None:
    """nasbench-pc: DARTS, PC-DARTS and their ablations as plugins of one search harness."""
    if plugin_modules:
        registry.add_plugin_modules(plugin_modules)
    if ctx.invoked_subcommand != "plugins":  # that command lists the failures itself
        warn_failed_plugins()


def warn_failed_plugins() -> None:
    """One stderr line when some plugin or hook failed, naming the plugins."""
    failed = registry.failures()
    if not failed:
        return
    names = list(dict.fromkeys(failure.plugin.name for failure in failed))
    what = "failed to load" if all(failure.hook is None for failure in failed) else "failed"
    err_console.print(f"warning: {len(names)} nasbench_pc plugin{'s' if len(names) > 1 else ''} {what} "
                      f"({', '.join(names)}); see `nasbench-pc plugins`", style="yellow", markup=False,
                      highlight=False, soft_wrap=True)
