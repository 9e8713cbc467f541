"""Every setting declared once: flag, ``TAVUS_MONITOR_*`` variable, config key, default, help.

click does the precedence the README promises, per option: the command line, then the
environment (``envvar``), then ``config.toml`` (loaded into ``ctx.default_map`` by
:func:`config_option`), then the default. A command converts, and so checks, only the settings it
declares: ``trigger`` never reads ``TAVUS_MONITOR_MAX_BODY_MB``, so a bad value there cannot stop
it. Every refusal is one sentence naming where the value came from (``--port``,
``$TAVUS_MONITOR_PORT`` or the config file), raised as :class:`SettingsError` rather than click's
multi-line usage error.

Adding a setting: one :class:`Setting` in :data:`SETTINGS`, the field of the same name on
:class:`~tavus_monitor.settings.Settings` (the typed result the rest of the program reads), the
command(s) that use it, and its row in the README's options table (a test compares the two).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from ..settings import (
    DEFAULT_FORWARD_RETRIES,
    DEFAULT_FORWARD_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_PORT,
    DEFAULT_TAVUS_API_BASE_URL,
    ENV_PREFIX,
    TOKEN_PATTERN,
    SettingsError,
    default_config_file,
    default_data_dir,
)

Kind = Literal["whole", "number", "text", "path", "switch"]

_KIND_WORDS: dict[Kind, str] = {
    "whole": "a whole number",
    "number": "a number",
    "text": "text",
    "path": "a path",
    "switch": "true or false",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Setting:
    """One option of the command line, the environment and the config file."""

    name: str
    """The config key and the :class:`Settings` field; the flag is ``--name-with-dashes`` and
    the variable ``TAVUS_MONITOR_NAME``."""
    kind: Kind
    help: str
    default: Any = None
    """The value when nothing sets it; a callable is called (the user data directory)."""
    metavar: str | None = None
    """How ``--help`` and the README write the value (``--port N``); None for a switch."""
    check: Callable[[Any], str | None] | None = None
    """The sentence refusing a converted value that cannot work, or None when it is fine."""
    env: str | None = None
    """The variable, when it is one another tool already reads (``TAVUS_API_KEY``, as Tavus's
    own CLI) rather than ``TAVUS_MONITOR_NAME``."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str:
        return self.env or ENV_PREFIX + self.name.upper()

    def option(self) -> click.Option:
        """This setting as a click option (flag, variable, default, help, conversion)."""
        if self.kind == "switch":
            return click.Option(
                [self.flag],
                is_flag=True,
                default=bool(self.default),
                type=_Switch(self),
                envvar=self.envvar,
                help=self.help,
            )
        return click.Option(
            [self.flag],
            default=self.default,
            type=_Value(self),
            envvar=self.envvar,
            metavar=self.metavar,
            help=self.help,
        )

    def refuse(self, value: Any, ctx: click.Context | None) -> SettingsError:
        """The one sentence for a value that is not of this setting's kind."""
        where = _origin(self, ctx)
        return SettingsError(f"{where} must be {_KIND_WORDS[self.kind]}, not {value!r}.")

    def convert(self, value: Any, ctx: click.Context | None) -> Any:
        """``value`` (text from the command line or environment, a TOML value, or the default)
        as this setting's type, checked."""
        converted = self._convert(value, ctx)
        if self.check is not None and converted is not None:
            problem = self.check(converted)
            if problem is not None:
                raise SettingsError(problem)
        return converted

    def _convert(self, value: Any, ctx: click.Context | None) -> Any:
        if self.kind == "switch":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise self.refuse(value, ctx)
        if self.kind == "path":
            return value if isinstance(value, Path) else Path(str(value)).expanduser()
        if self.kind == "text":
            return str(value)
        # A TOML boolean or fraction must not become a port (int(True) == 1, int(5000.7) == 5000).
        if isinstance(value, bool) or (self.kind == "whole" and isinstance(value, float)):
            raise self.refuse(value, ctx)
        try:
            return int(value) if self.kind == "whole" else float(value)
        except (TypeError, ValueError):
            raise self.refuse(value, ctx) from None


def _origin(setting: Setting, ctx: click.Context | None) -> str:
    """Where the value being converted came from, as the start of a sentence."""
    source = ctx.get_parameter_source(setting.name) if ctx is not None else None
    if source is ParameterSource.ENVIRONMENT:
        return f"{setting.name} in ${setting.envvar}"
    if source is ParameterSource.DEFAULT_MAP and ctx is not None:
        return f"{setting.name} in {ctx.meta.get(_CONFIG_PATH, 'the config file')}"
    return setting.flag


if TYPE_CHECKING:  # generic from click 8.5; subscripting it at run time breaks older clicks
    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType


class _Value(_ParamType):
    """Converts through the :class:`Setting`, so its sentences replace click's messages."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.setting.convert(value, ctx)


class _Switch(click.types.BoolParamType):
    """A flag (``--headless``) that the environment and the config file set with true/false."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.setting.convert(value, ctx)


def _port_range(port: int) -> str | None:
    if 0 <= port <= 65535:
        return None
    return f"Port {port} is out of range; use 0 to 65535 (0 picks a free one)."


def _more_than_zero(sentence: str) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if math.isfinite(value) and value > 0 else sentence

    return check


def _token(token: str) -> str | None:
    if TOKEN_PATTERN.fullmatch(token):
        return None
    return (
        "The token must be 8 to 200 characters of A-Z, a-z, 0-9, '-' or '_' "
        "so it can sit in a URL unchanged."
    )


def _public_url(url: str) -> str | None:
    if re.match(r"https?://[^/\s]+", url):
        return None
    return (
        f"--public-url {url!r} is not an http(s) URL; "
        "give the base URL of your tunnel, e.g. https://abc.trycloudflare.com."
    )


def _forward_to(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0  # .port raises for one that is no port
    except ValueError:
        port_ok = False
    printable = url.isprintable() and not any(char.isspace() for char in url)
    if port_ok and printable and parts.scheme in ("http", "https") and parts.hostname:
        return None
    return (
        f"--forward-to {url!r} is not an http(s) URL; give your handler's full URL, "
        "e.g. http://localhost:3000/tavus/webhook."
    )


def _forward_retries(retries: int) -> str | None:
    if 0 <= retries <= 100:
        return None
    return "--forward-retries must be a whole number from 0 to 100."


def _tavus_api_base_url(url: str) -> str | None:
    if re.match(r"https?://[^/\s]+", url):
        return None
    return (
        f"The Tavus API base URL {url!r} is not an http(s) URL; "
        f"the default is {DEFAULT_TAVUS_API_BASE_URL} (with /v2)."
    )


NGROK_REGIONS = ("us", "eu", "ap", "au", "sa", "jp", "in")
"""The regions ngrok's agent accepts for ``--region``."""


def _ngrok_region(region: str) -> str | None:
    if region in NGROK_REGIONS:
        return None
    return (
        f"--ngrok-region {region!r} is not an ngrok region; use one of {', '.join(NGROK_REGIONS)}."
    )


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("headless", "switch", "no TUI: JSON lines on stdout, status on stderr"),
        Setting(
            "port",
            "whole",
            f"port to listen on (default {DEFAULT_PORT}, or a free one if that is busy; "
            "0 = any free port)",
            default=DEFAULT_PORT,
            metavar="N",
            check=_port_range,
        ),
        Setting(
            "host",
            "text",
            f"address to listen on (default {DEFAULT_HOST})",
            default=DEFAULT_HOST,
            metavar="ADDR",
        ),
        Setting(
            "token",
            "text",
            "the secret path segment (default: one made on first run and kept)",
            metavar="T",
            check=_token,
        ),
        Setting(
            "no_token",
            "switch",
            "serve plain /webhook as in Tavus's guide (anyone who learns the URL can post)",
        ),
        Setting(
            "max_body_mb",
            "number",
            f"largest accepted body in MB (default {DEFAULT_MAX_BODY_MB:g}); larger gets 413",
            default=DEFAULT_MAX_BODY_MB,
            metavar="MB",
            check=_more_than_zero("--max-body-mb must be a number more than 0."),
        ),
        Setting(
            "header_timeout",
            "number",
            "seconds a connection has to send its request line and headers "
            f"(default {DEFAULT_HEADER_TIMEOUT:g}); a slower one is closed",
            default=DEFAULT_HEADER_TIMEOUT,
            metavar="S",
            check=_more_than_zero("--header-timeout must be a number of seconds more than 0."),
        ),
        Setting("db", "path", "SQLite file (default: events.db in the data dir)", metavar="PATH"),
        Setting(
            "ephemeral",
            "switch",
            "keep events only while the monitor runs: in a temporary file in a private "
            "directory, deleted when it stops",
        ),
        Setting("no_tunnel", "switch", "do not open a public tunnel"),
        Setting(
            "public_url",
            "text",
            "base URL of a tunnel you run yourself (e.g. cloudflared), "
            "announced as the callback URL",
            metavar="URL",
            check=_public_url,
        ),
        Setting(
            "ngrok_domain",
            "text",
            "a reserved ngrok domain, so the public URL survives restarts",
            metavar="D",
        ),
        Setting(
            "ngrok_region",
            "text",
            f"ngrok region ({', '.join(NGROK_REGIONS)})",
            metavar="R",
            check=_ngrok_region,
        ),
        Setting(
            "ngrok_path",
            "text",
            "an installed ngrok binary (default: PYNGROK_NGROK_PATH or PATH)",
            metavar="P",
        ),
        Setting(
            "ngrok_authtoken",
            "text",
            "ngrok authtoken (default: NGROK_AUTHTOKEN or ngrok's config)",
            metavar="T",
        ),
        Setting(
            "tavus_api_key",
            "text",
            "Tavus API key, for the commands that call Tavus (default: TAVUS_API_KEY)",
            metavar="KEY",
            env="TAVUS_API_KEY",
        ),
        Setting(
            "tavus_api_base_url",
            "text",
            "Tavus's API, /v2 included (default: TAVUS_PUBLIC_API_BASE_URL, else "
            f"{DEFAULT_TAVUS_API_BASE_URL})",
            default=DEFAULT_TAVUS_API_BASE_URL,
            metavar="URL",
            check=_tavus_api_base_url,
            env="TAVUS_PUBLIC_API_BASE_URL",
        ),
        Setting(
            "forward_to",
            "text",
            "POST every stored delivery to your own handler too, in arrival order",
            metavar="URL",
            check=_forward_to,
        ),
        Setting(
            "forward_timeout",
            "number",
            f"seconds one forwarding try may take (default {DEFAULT_FORWARD_TIMEOUT:g})",
            default=DEFAULT_FORWARD_TIMEOUT,
            metavar="S",
            check=_more_than_zero("--forward-timeout must be a number of seconds more than 0."),
        ),
        Setting(
            "forward_retries",
            "whole",
            "times an event your handler failed (an error answer, a timeout) is sent again "
            f"before it is given up (default {DEFAULT_FORWARD_RETRIES})",
            default=DEFAULT_FORWARD_RETRIES,
            metavar="N",
            check=_forward_retries,
        ),
        Setting(
            "data_dir",
            "path",
            "where the token, database, state and log files live (default: the user data "
            "directory)",
            default=default_data_dir,
            metavar="DIR",
        ),
    )
}
"""The settings, in the order ``--help`` and the README list them."""

CONFIG_FILE_HELP = "a TOML config file (default: config.toml in the user config dir)"
SHARED = ("data_dir",)
"""Settings every command takes, before or after its name (``--data-dir X history`` or
``history --data-dir X``)."""

_CONFIG_PATH = "tavus_monitor.config_path"
_CONFIG = "tavus_monitor.config"

F = TypeVar("F", bound=Callable[..., Any])


def use(*names: str) -> Callable[[F], F]:
    """Decorate a command with these settings (and ``--config``, which says where the file is)."""

    def decorate(function: F) -> F:
        params: list[click.Parameter] = getattr(function, "__click_params__", [])
        # click lists decorator parameters bottom-up and reverses them: appending in reverse
        # keeps --help in the order of SETTINGS.
        params.append(config_option())
        for name in reversed([n for n in SETTINGS if n in names]):
            params.append(SETTINGS[name].option())
        function.__click_params__ = params  # type: ignore[attr-defined]
        return function

    return decorate


def config_option() -> click.Option:
    """``--config FILE`` / ``$TAVUS_MONITOR_CONFIG``: read before the command's other options
    (it is eager) and made their ``default_map``, so the file sits between the environment and
    the defaults. A sub-command that is not given its own ``--config`` keeps the file its group
    read."""
    return click.Option(
        ["--config"],
        type=click.Path(path_type=Path),
        envvar=ENV_PREFIX + "CONFIG",
        metavar="FILE",
        is_eager=True,
        expose_value=False,
        callback=_load_config,
        help=CONFIG_FILE_HELP,
    )


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    source = ctx.get_parameter_source("config")
    if _CONFIG in ctx.meta and source is not ParameterSource.COMMANDLINE:
        config, path = ctx.meta[_CONFIG], ctx.meta[_CONFIG_PATH]  # what the group read
    else:
        chosen = source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        path = value.expanduser() if chosen and value is not None else default_config_file()
        config = load_config_file(path, required=chosen)
        ctx.meta[_CONFIG], ctx.meta[_CONFIG_PATH] = config, path
    ctx.default_map = dict(config)


def config_file(ctx: click.Context) -> Path:
    """The config file the command's settings were read with."""
    path: Path = ctx.meta[_CONFIG_PATH]
    return path


def load_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The settings in a TOML file. Unknown keys are an error, to catch typos: click would
    ignore them in ``default_map``."""
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
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        known = ", ".join(sorted(SETTINGS))
        raise SettingsError(
            f"Config file {path} has unknown setting(s) {', '.join(unknown)}; known ones: {known}."
        )
    return data


def shared(ctx: click.Context, name: str) -> Any:
    """A :data:`SHARED` setting's value: the command's own flag if given there, else what its
    group resolved (the group's flag, the environment, the file or the default).

    Groups nest (``tavus-monitor conversation create``): the innermost command line that
    gives the flag wins, else the outermost group's value."""
    outer: click.Context = ctx
    at: click.Context | None = ctx
    while at is not None and name in at.params:
        if at.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            return at.params[name]
        outer, at = at, at.parent
    return outer.params[name]


def given_on_command_line(ctx: click.Context, names: Iterable[str]) -> list[str]:
    """The flags among ``names`` that the user typed on this command line."""
    return [
        SETTINGS[name].flag
        for name in names
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
