"""Characters that display as nothing, shown as something.

A name can hold characters a browser draws as nothing: bidirectional controls (U+202E turns
``report_fdp.exe`` into what reads as ``report_exe.pdf``), zero-width spaces and joiners, the
byte order mark, tag characters, fillers. Two names that differ only by them look the same, and
one can be made to read as another. Wherever the UI shows a name or a value (every template
output through the environment's ``finalize``, the graph and timeline drawings, the log tail),
each such character is replaced by a visible marker, ``⟨U+202E⟩``. The marker holds no markup
character, so it is safe before or after escaping.

Which characters: every format character (Unicode category Cf, listed here as ranges so that no
table is built at import; a test checks the list against :mod:`unicodedata`), the variation
selectors, the combining grapheme joiner, and the Hangul and Khmer fillers that draw as blanks.
The script (``baton.js``) marks its flash messages by the same rule.
"""

from __future__ import annotations

import re

__all__ = ["INVISIBLE", "reveal"]

INVISIBLE = re.compile(
    "["
    "\u00ad\u034f\u061c\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
    "]"
)


def _marker(found: re.Match[str]) -> str:
    return f"\u27e8U+{ord(found.group()):04X}\u27e9"


def reveal(text: str) -> str:
    """``text`` with each invisible character replaced by its marker (``⟨U+202E⟩``)."""
    if text.isascii():  # the usual case, and the cheap one: no such character is ASCII
        return text
    return INVISIBLE.sub(_marker, text)
