"""Exit codes, shared by every command (and promised in the README)."""

EXIT_OK = 0
EXIT_FAILED = 1
"""A sub-command's target failed (nothing listening, a receiver refused)."""
EXIT_USAGE = 2
"""Bad usage, or a setting that cannot work (such as a busy ``--port``)."""
