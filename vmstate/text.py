"""Make text that came from an input safe to print on a terminal line.

Stream names (idstrs, RAM block names, vmdesc field names) are bytes chosen by
whoever wrote the file: a newline would split a one-line error, an ESC would
drive the terminal, a lone surrogate (from a vmdesc's JSON) cannot be encoded
at all.  Every text output passes such pieces through ``printable``; JSON
output needs no escaping (``json.dumps`` writes ``\\uXXXX``).
"""

from __future__ import annotations

__all__ = ["printable", "printable_lines"]


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """Return ``text`` with every non-printable character as a ``\\xNN``/``\\uNNNN`` escape.

    Non-printable is ``str.isprintable``'s notion: control characters
    (newline, ESC, DEL, C1), format characters (bidi overrides), surrogates,
    unassigned code points and separators other than the space.  A backslash
    already in the text is left as it is: the result is for people to read.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str) -> str:
    """``printable`` applied line by line: the newlines between lines stay."""
    return "\n".join(printable(line) for line in text.split("\n"))
