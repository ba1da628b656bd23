"""Snapshot files read back with the plain libraries, to check what our codecs wrote."""

from __future__ import annotations

import io
import json
from typing import Any

import cbor2
import msgpack  # type: ignore[import-untyped]

from streams.snapshots._container import CODEC_IDS, PREAMBLE_SIZE, TAIL_SIZE
from streams.snapshots._jsonl import from_json_pairs

__all__ = ["raw_items"]


def raw_items(snapshot: bytes) -> list[Any]:
    """The items, decoded with the plain libraries only (no code of ours but the JSON tag)."""
    content = snapshot[PREAMBLE_SIZE:-TAIL_SIZE]
    codec = {v: k for k, v in CODEC_IDS.items()}[snapshot[10]]
    if codec == "msgpack":
        return list(msgpack.Unpacker(io.BytesIO(content), raw=False, max_buffer_size=64 << 20))
    if codec == "cbor":
        source, items = io.BytesIO(content), []
        decoder = cbor2.CBORDecoder(source)
        while source.tell() < len(content):
            items.append(decoder.decode())
        return items
    return [json.loads(line, object_pairs_hook=from_json_pairs) for line in content.splitlines()]
