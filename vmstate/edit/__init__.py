"""Change device state inside a stream and write it back (the application layer's editing)."""

from .virtio import (
    Edit,
    VirtioEditor,
    edit_virtio_devices,
    edit_virtio_records,
    edit_virtio_stream,
    guess_target,
    target_for_machine,
    virtio_devices,
)

__all__ = [
    "Edit",
    "VirtioEditor",
    "edit_virtio_devices",
    "edit_virtio_records",
    "edit_virtio_stream",
    "guess_target",
    "target_for_machine",
    "virtio_devices",
]
