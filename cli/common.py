"""What every `droidrl` command shares: the console and the error a user can fix."""

from __future__ import annotations

from rich.console import Console

console = Console()


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def mark(ok: bool) -> str:
    """A green yes or a red NO for a table cell."""
    return "[green]yes[/]" if ok else "[red]NO[/]"
