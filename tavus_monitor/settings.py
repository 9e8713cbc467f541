"""The typed settings the monitor runs with, and their defaults.

Every option has one name, used in all three places: ``--max-body-mb`` on the
command line, ``TAVUS_MONITOR_MAX_BODY_MB`` in the environment and
``max_body_mb`` in ``config.toml``. Each is declared once in ``cli/options.py``
(flag, variable, key, default, help, check), where click resolves them as
flags > environment > config file > defaults; :class:`Settings` is the result
the rest of the program reads, so nothing outside the command line imports click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir

APP_NAME = "tavus-monitor"
ENV_PREFIX = "TAVUS_MONITOR_"
DEFAULT_PORT = 5000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY_MB = 25.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_FORWARD_TIMEOUT = 10.0
DEFAULT_FORWARD_RETRIES = 5
DEFAULT_TAVUS_API_BASE_URL = "https://tavusapi.com/v2"
"""Tavus's API, ``/v2`` included, as ``TAVUS_PUBLIC_API_BASE_URL`` means in Tavus's own CLI."""
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,200}")


class SettingsError(Exception):
    """A setting is wrong; the message is one sentence saying which and what to do."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    port_explicit: bool = False
    """True when the user chose the port: a busy port is then an error, not a fallback."""
    token: str | None = None
    """A fixed token; None means the one kept in the data directory."""
    no_token: bool = False
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds a connection has to send its request line and headers, then it is closed."""
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    db: Path | None = None
    """None means ``<data_dir>/events.db``."""
    ephemeral: bool = False
    headless: bool = False
    no_tunnel: bool = False
    public_url: str | None = None
    ngrok_path: str | None = None
    """An ngrok binary (default: PYNGROK_NGROK_PATH, ngrok on PATH, or pyngrok's download)."""
    ngrok_authtoken: str | None = None
    """Default: NGROK_AUTHTOKEN, else the token in ngrok's own config file."""
    ngrok_domain: str | None = None
    """A reserved (static) domain, so the public URL survives restarts."""
    ngrok_region: str | None = None
    tavus_api_key: str | None = field(default=None, repr=False)
    """Tavus's API key (``TAVUS_API_KEY``); never shown, logged or put in a sentence."""
    tavus_api_base_url: str = DEFAULT_TAVUS_API_BASE_URL
    forward_to: str | None = None
    """The developer's handler: every stored delivery is POSTed there (see forward.py)."""
    forward_timeout: float = DEFAULT_FORWARD_TIMEOUT
    """Seconds one forwarding try may take before it counts as failed."""
    forward_retries: int = DEFAULT_FORWARD_RETRIES
    """Failed tries again (an error answer, a timeout) before an event is given up."""
    config_file: Path | None = None

    @property
    def tunnel_wanted(self) -> bool:
        """Whether the monitor should open an ngrok tunnel itself."""
        return not self.no_tunnel and self.public_url is None

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, or None for ``--ephemeral`` (the store makes a temporary one)."""
        if self.ephemeral:
            return None
        return self.db if self.db is not None else self.data_dir / "events.db"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def default_data_dir() -> Path:
    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def validate(settings: Settings) -> None:
    """Refuse combinations that cannot work. Each value was already checked on its own as it
    was read (``cli/options.py``); this is what no single option can see."""
    if settings.token is not None and settings.no_token:
        raise SettingsError("--token and --no-token contradict each other; choose one.")
