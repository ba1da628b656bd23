"""Tests of streams.qemu: byte-exact round trips, RAM, extract, hostile streams."""
