"""The console adapter: a practice channel in the terminal, no workspace or tokens needed."""

from adapters.console.adapter import ConsoleAdapter

__all__ = ["ConsoleAdapter"]
