"""Wire codecs around one stream model.

* ``streams.records``: the stream model, the records every codec reads and writes (neutral: devices use it too);
* ``streams.files``: opening stream files (xz and gzip unpacked, non-seekable inputs spooled);
* ``streams.qemu``: QEMU's binary migration stream;
* ``streams.snapshots``: our self-describing snapshots (msgpack, CBOR, JSON).

``streams`` never imports ``devices``: descriptions are injected (``vmstate.lookup``).
"""

__all__: list[str] = []
