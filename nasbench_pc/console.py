"""The rich consoles every command prints to (a leaf module: commands import it, it imports nothing of ours)."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
