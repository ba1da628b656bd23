"""Tests of the streams package: the stream files, the QEMU codec, snapshots."""
