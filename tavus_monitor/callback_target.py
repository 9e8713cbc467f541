"""Which ``callback_url`` a Tavus resource created from here gets: one decision, one place.

``conversation create``, ``replica create`` and ``video create`` (and later the dashboard) all
ask :func:`choose_callback_url`. The default is the running monitor's public callback URL
(``state.json``'s ``public_url``: the tunnel's, or ``--public-url``). A local-only URL is
refused unless ``allow_local``: Tavus keeps a resource's ``callback_url`` for good (no endpoint
changes it), so a conversation created with ``http://127.0.0.1…`` would send every callback
nowhere, silently. ``--callback-url`` overrides, and is checked for the same mistake.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .state import RunningState


class CallbackUrlRefused(Exception):
    """No callback URL can be chosen; the message is one sentence saying what to do."""


def choose_callback_url(
    state: RunningState | None, *, override: str | None = None, allow_local: bool = False
) -> str:
    """The callback URL to send Tavus, or :class:`CallbackUrlRefused`.

    ``state``: the running monitor (``read_state``), None when none runs. ``override``: a URL
    the user gave instead. ``allow_local``: send a URL Tavus cannot reach all the same (a
    stand-in Tavus on this machine, or a tunnel the monitor does not know about).
    """
    if override is not None:
        parts = urlsplit(override)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CallbackUrlRefused(f"--callback-url {override!r} is not an http(s) URL.")
        if not allow_local and is_local_host(parts.hostname):
            raise CallbackUrlRefused(
                f"Tavus cannot reach {override} (a local address); give a public URL, "
                "or pass --allow-local to send it anyway."
            )
        return override
    if state is None:
        raise CallbackUrlRefused(
            "No running monitor found, so there is no callback URL to give Tavus; start "
            "`tavus-monitor` first (in another terminal), or pass --callback-url."
        )
    if state.public_url is not None:
        return state.public_url
    if allow_local:
        return state.callback_url
    raise CallbackUrlRefused(
        f"The running monitor has only a local callback URL ({state.local_url}), which Tavus "
        "cannot reach; fix its tunnel (the dashboard says how) or restart it with "
        "--public-url, or pass --allow-local to send it anyway."
    )


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine or a private network, which Tavus cannot reach."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )
