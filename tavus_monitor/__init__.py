"""tavus-monitor: receive, inspect and keep Tavus callbacks."""

__version__ = "0.1.0"
