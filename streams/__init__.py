"""Wire codecs: QEMU's binary stream (``streams.qemu``) and self-describing snapshots (``streams.selfdesc``)."""

__all__: list[str] = []
