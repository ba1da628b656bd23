"""How text output shows the fields of every description we have (``vmstate.display``): dump's and diff's."""

from __future__ import annotations

import functools
from typing import Iterator, Mapping

from vmstate.description import Buffer, Int
from vmstate.display import DisplayTable, display_table

__all__ = ["display_kinds"]


class _DisplayKinds(Mapping[tuple[str, str], "Int | Buffer"]):
    """The display table of our registry, filled per description name as a renderer asks (no device imported ahead)."""

    def __init__(self) -> None:
        from streams.qemu.configuration import CONFIGURATION

        self._table = display_table([CONFIGURATION])
        self._asked: set[str] = set()

    def _fill(self, name: str) -> None:
        if name not in self._asked:
            from devices import display_descriptions

            self._asked.add(name)
            self._table.update(display_table(display_descriptions(name)))

    def __getitem__(self, key: tuple[str, str]) -> Int | Buffer:
        self._fill(key[0])
        return self._table[key]

    def _every(self) -> dict[tuple[str, str], Int | Buffer]:
        from devices import display_names

        for name in display_names():
            self._fill(name)
        return self._table

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(dict(self._every()))

    def __len__(self) -> int:
        return len(self._every())


@functools.cache
def display_kinds() -> DisplayTable:
    """The display table of our registry, both virtio transports and QEMU's configuration section."""
    return _DisplayKinds()
