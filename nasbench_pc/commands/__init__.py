"""Subcommands of the CLI, one module per group of related commands."""
