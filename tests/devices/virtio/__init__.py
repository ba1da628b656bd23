"""Tests of devices.virtio: device state, accessors, rings, headers, every virtio section."""
