"""One typed settings object, resolved as: flags > environment > config file > defaults.

Every option has one name, used in all three places: ``--max-body-mb`` on the
command line, ``TAVUS_MONITOR_MAX_BODY_MB`` in the environment and
``max_body_mb`` in ``config.toml``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir, user_data_dir

APP_NAME = "tavus-monitor"
ENV_PREFIX = "TAVUS_MONITOR_"
DEFAULT_PORT = 5000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY_MB = 25.0
DEFAULT_HEADER_TIMEOUT = 10.0
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
    config_file: Path | None = None

    @property
    def tunnel_wanted(self) -> bool:
        """Whether the monitor should open an ngrok tunnel itself."""
        return not self.no_tunnel and self.public_url is None

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, or None for an in-memory store."""
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


_CONVERTERS: dict[str, Any] = {
    "host": str,
    "port": int,
    "token": str,
    "no_token": bool,
    "max_body_mb": float,
    "header_timeout": float,
    "data_dir": Path,
    "db": Path,
    "ephemeral": bool,
    "headless": bool,
    "no_tunnel": bool,
    "public_url": str,
    "ngrok_path": str,
    "ngrok_authtoken": str,
    "ngrok_domain": str,
    "ngrok_region": str,
}


def _convert(name: str, value: Any, source: str) -> Any:
    converter = _CONVERTERS[name]
    if converter is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{name} in {source} must be true or false, not {value!r}.")
    if converter is Path:
        return Path(str(value)).expanduser()
    kind = _KINDS.get(converter, f"a {converter.__name__}")
    # A TOML boolean or fraction must not become a port (int(True) == 1, int(5000.7) == 5000).
    if converter in (int, float) and (
        isinstance(value, bool) or (converter is int and isinstance(value, float))
    ):
        raise SettingsError(f"{name} in {source} must be {kind}, not {value!r}.")
    try:
        return converter(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} in {source} must be {kind}, not {value!r}.") from None


_KINDS: dict[Any, str] = {int: "a whole number", float: "a number", str: "text"}


def load_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The settings in a TOML file (unknown keys are an error, to catch typos)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise SettingsError(
                f"Config file {path} does not exist; create it or drop --config."
            ) from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"Config file {path} is not valid TOML ({exc}); fix it.") from None
    unknown = sorted(set(data) - set(_CONVERTERS))
    if unknown:
        known = ", ".join(sorted(_CONVERTERS))
        raise SettingsError(
            f"Config file {path} has unknown setting(s) {', '.join(unknown)}; known ones: {known}."
        )
    return data


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge flags (only those given), environment and config file over the defaults."""
    env = os.environ if env is None else env
    config_source = config_file or _env_path(env, "CONFIG") or default_config_file()
    config = load_config_file(
        config_source, required=config_file is not None or _env_path(env, "CONFIG") is not None
    )
    values: dict[str, Any] = {}
    for name in _CONVERTERS:
        if flags.get(name) is not None:
            values[name] = _convert(name, flags[name], "the command line")
        elif ENV_PREFIX + name.upper() in env:
            values[name] = _convert(
                name, env[ENV_PREFIX + name.upper()], f"${ENV_PREFIX}{name.upper()}"
            )
        elif name in config:
            values[name] = _convert(name, config[name], str(config_source))
    settings = Settings(**values, port_explicit="port" in values, config_file=config_source)
    validate(settings)
    return settings


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(ENV_PREFIX + name)
    return Path(value).expanduser() if value else None


def validate(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise SettingsError(
            f"Port {settings.port} is out of range; use 0 to 65535 (0 picks a free one)."
        )
    if not math.isfinite(settings.max_body_mb) or settings.max_body_mb <= 0:
        raise SettingsError("--max-body-mb must be a number more than 0.")
    if not math.isfinite(settings.header_timeout) or settings.header_timeout <= 0:
        raise SettingsError("--header-timeout must be a number of seconds more than 0.")
    if settings.token is not None and not TOKEN_PATTERN.fullmatch(settings.token):
        raise SettingsError(
            "The token must be 8 to 200 characters of A-Z, a-z, 0-9, '-' or '_' "
            "so it can sit in a URL unchanged."
        )
    if settings.token is not None and settings.no_token:
        raise SettingsError("--token and --no-token contradict each other; choose one.")
    if settings.public_url is not None and not re.match(r"https?://[^/\s]+", settings.public_url):
        raise SettingsError(
            f"--public-url {settings.public_url!r} is not an http(s) URL; "
            "give the base URL of your tunnel, e.g. https://abc.trycloudflare.com."
        )
