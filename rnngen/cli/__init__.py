"""The command line: the Typer app (app.py), its progress display (progress.py) and its reader of
prompts from standard input (prompts.py). Nothing else in rnngen imports this package."""

from rnngen.cli.app import app, main

__all__ = ["app", "main"]
