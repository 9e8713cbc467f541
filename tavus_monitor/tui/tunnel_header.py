"""What the dashboard's header says about the tunnel, in the dashboard's own words.

The tunnel's advice (:mod:`tavus_monitor.tunnel`) is written for every front end
("restart with NGROK_AUTHTOKEN set"); in the running dashboard an environment variable set
in another shell never arrives, so a missing or refused authtoken is answered with the
key that takes one here (``a``), and every failure with the key that retries (``t``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tunnel import TunnelState, TunnelStatus
from .widgets.url_bar import keep_together

AUTHTOKEN_PAGE = "https://dashboard.ngrok.com/get-started/your-authtoken"


@dataclass(frozen=True, slots=True)
class TunnelHeader:
    local_only: str | None
    """Why Tavus cannot reach the callback URL, in a few words; None when it is public."""
    tunnel: str
    style: str
    advice: str | None


def tunnel_header(
    status: TunnelStatus, *, local_only: bool, previous_advice: str | None
) -> TunnelHeader:
    """The header's tunnel rows for ``status``.

    ``previous_advice`` stays while a retry is starting: the advice goes only once the
    tunnel works (or another failure brings its own).
    """
    state = status.state
    if state is TunnelState.UP:
        return TunnelHeader(None, f"up ({status.public_url})", "green", None)
    if state is TunnelState.OFF:
        if not local_only:
            return TunnelHeader(None, status.problem or "your own", "", None)
        return TunnelHeader(
            "no tunnel was opened (--no-tunnel)",
            "",
            "yellow",
            "Restart without --no-tunnel to open one, or with --public-url and a tunnel you run.",
        )
    if state is TunnelState.STARTING:
        return TunnelHeader(
            "the tunnel is not up yet", "Starting ngrok…", "yellow", previous_advice
        )
    problem = status.problem or ""
    retry = keep_together("t retries now.")
    if status.needs_authtoken:
        advice = (
            f"{keep_together('Press a')} to paste your authtoken ({AUTHTOKEN_PAGE}), or run "
            f"`ngrok config add-authtoken <token>` elsewhere, then {keep_together('press t.')}"
        )
    else:
        advice = f"{status.advice or ''} {retry}".strip()
    if state is TunnelState.FAILED:
        return TunnelHeader("the tunnel failed", problem, "bold red", advice)
    return TunnelHeader("the tunnel is reconnecting", problem, "yellow", advice)
