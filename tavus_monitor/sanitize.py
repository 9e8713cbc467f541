"""Making untrusted text safe to put on a terminal.

Payload text may carry ESC sequences (clear the screen, set the clipboard
through OSC 52, forge OSC 8 links), other C0/C1 controls, and bidi overrides
that reorder what is shown. ``printable`` makes every such character visible
instead of active, so what the user reads is what was sent.
"""

from __future__ import annotations

import re

_CONTROL_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_CONTROL_PICTURES[0x7F] = "\u2421"
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code in _CONTROL_PICTURES:
        return _CONTROL_PICTURES[code]  # e.g. ESC → ␛
    return f"<U+{code:04X}>"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every terminal-active character shown as a harmless symbol.

    Tabs are kept; newlines too when ``keep_newlines`` (else shown as ␊).
    """
    if not keep_newlines:
        text = text.replace("\n", "\u240a")
    return _UNSAFE.sub(_visible, text)
