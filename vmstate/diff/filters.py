"""Which paths and sections a diff looks at: ``--ignore`` and ``--section`` globs.

Only ``*`` (any run of characters, dots and slashes included) and ``?`` (one
character) are special, so brackets in paths like ``vq[0]`` match literally.
"""

from __future__ import annotations

import re
from typing import Iterable

import attrs

__all__ = ["glob_to_regex", "Filters"]


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob where only ``*`` and ``?`` are wildcards."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


@attrs.frozen
class Filters:
    """The user's selection: sections to look at, paths to ignore."""

    sections: tuple[re.Pattern[str], ...] = ()
    ignores: tuple[re.Pattern[str], ...] = ()
    #: the globs as the user wrote them, for messages (same order as the patterns)
    section_globs: tuple[str, ...] = ()
    ignore_globs: tuple[str, ...] = ()

    @classmethod
    def from_globs(cls, sections: Iterable[str] = (), ignores: Iterable[str] = ()) -> "Filters":
        sections, ignores = tuple(sections), tuple(ignores)
        return cls(tuple(map(glob_to_regex, sections)), tuple(map(glob_to_regex, ignores)), sections, ignores)

    def unmatched(self, names: Iterable[str], paths: Iterable[tuple[str, str]]) -> tuple[str, ...]:
        """The globs that match nothing: no section name (``--section``), no name or path (``--ignore``)."""
        names, paths = set(names), list(paths)
        out = [glob for glob, p in zip(self.section_globs, self.sections) if not any(p.match(n) for n in names)]
        for glob, p in zip(self.ignore_globs, self.ignores):
            if not any(p.match(n) for n in names) and not any(
                p.match(path) or p.match(f"{section}:{path}") for section, path in paths
            ):
                out.append(glob)
        return tuple(out)

    def wants_section(self, name: str) -> bool:
        """Whether a section (idstr, or ``ram/<block>``) is compared at all."""
        if any(p.match(name) for p in self.ignores):
            return False
        return not self.sections or any(p.match(name) for p in self.sections)

    def ignores_path(self, section: str, path: str) -> bool:
        """Whether a field change is left out: the glob matches ``PATH`` or ``SECTION:PATH``."""
        full = f"{section}:{path}"
        return any(p.match(path) or p.match(full) for p in self.ignores)
