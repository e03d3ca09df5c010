"""The CLI package: one module per command group, named after its commands (issue 9, layout)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from nasbench_pc.cli import main

MODULE_OF = {
    "methods": "methods", "plugins": "methods", "supernet": "methods",
    "search": "search",
    "compare": "compare", "bench": "bench", "plan": "bench",  # issue 21 split bench and plan out of compare.py
    "show": "show", "train": "train", "export": "export", "evaluate": "evaluate",
}


def test_each_command_lives_in_the_module_named_after_its_group() -> None:
    found = {name: command.callback.__module__ for name, command in main.commands.items()}
    assert found == {name: f"nasbench_pc.cli.{module}" for name, module in MODULE_OF.items()}


def test_the_old_commands_package_is_gone() -> None:
    assert importlib.util.find_spec("nasbench_pc.commands") is None


@pytest.mark.parametrize("module", ["compare", "train"])
def test_a_command_module_imported_first_attaches_every_command(module: str) -> None:
    code = (f"import nasbench_pc.cli.{module}; from nasbench_pc.cli import main; "
            "print(' '.join(sorted(main.commands)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == sorted(MODULE_OF)


def test_python_dash_m_runs_the_same_group() -> None:
    result = subprocess.run([sys.executable, "-m", "nasbench_pc", "show", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "Render GENOTYPE's cells and its parameters and MACs." in result.stdout
