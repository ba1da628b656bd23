"""``vmstate dump``: read a stream into a dump model (``run``), render it as text or JSON (``render``).

The model is ``streams.qemu.summarize``'s dict with the blocks' content
digests merged in; its byte strings are bytes, or ``vmstate.spill.Blob``s
when long, so that a 200 MB body is held once, on disk, and written out a
chunk at a time.
"""

from .render import render_json, render_text
from .run import read_dump

__all__ = ["read_dump", "render_json", "render_text"]
