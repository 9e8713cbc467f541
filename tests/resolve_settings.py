"""``resolve(flags, env=..., config_file=...)``: the Settings ``tavus-monitor`` would run with.

It goes through the real command line: ``flags`` become arguments that click parses and
``env`` becomes the process environment (every other ``TAVUS_MONITOR_*`` variable removed), so
tests check the precedence click implements rather than a copy of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tavus_monitor.cli import dashboard
from tavus_monitor.cli.options import SETTINGS
from tavus_monitor.settings import ENV_PREFIX, Settings


def arguments(flags: Mapping[str, Any]) -> list[str]:
    """``{"port": 7003, "headless": True, "host": None}`` → ``["--port", "7003", "--headless"]``."""
    argv: list[str] = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        flag = SETTINGS[name].flag
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Flags over ``env`` (default: the current environment) over the config file over defaults."""
    argv = arguments(flags)
    if config_file is not None:
        argv += ["--config", str(config_file)]
    with pytest.MonkeyPatch.context() as patch:
        if env is not None:
            for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
        with dashboard.run.make_context("run", argv) as ctx:
            return dashboard.settings_from(ctx)
