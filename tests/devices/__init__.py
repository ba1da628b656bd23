"""Tests of the devices package: CPU endian models, machines, virtio."""
