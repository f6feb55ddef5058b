"""Text as every database can store it: a storage concern, kept in the store."""

from __future__ import annotations


def storable(text: str) -> str:
    """``text`` as every database can store it: PostgreSQL's TEXT cannot hold NUL, and no driver
    encodes a lone surrogate (a task's output may contain both). Each such character is replaced
    by one other, so lengths hold; text that is fine already comes back as the same object."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text
