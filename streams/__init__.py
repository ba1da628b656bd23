"""Wire codecs: QEMU's binary stream (``streams.qemu``)."""

__all__: list[str] = []
