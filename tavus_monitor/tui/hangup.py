"""Whether the dashboard's terminal went away: then the dashboard stops.

A terminal that closes normally sends SIGHUP, and the monitor stops on it. One that closes
without (the far end of a pseudo-terminal that is not the process's controlling one: a
test harness, a benchmark, some multiplexers) leaves Textual's input thread reading an
end of file in a loop: measured at 61 to 78 % of a core, for ever, serving nobody. The
app asks :func:`terminal_hung_up` once a second (a zero-timeout ``poll``, a few µs) and
quits the way ``q`` does, so the store is flushed and the port released.
"""

from __future__ import annotations

import select

HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


def terminal_hung_up(fd: int) -> bool:
    """Whether the terminal on ``fd`` hung up (its other end is closed)."""
    poller = select.poll()
    poller.register(fd, HANGUP)
    return any(mask & HANGUP for _, mask in poller.poll(0))
