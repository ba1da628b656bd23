"""virtio-gpu (hw/display/virtio-gpu.c, QEMU 7.2): a second field after the virtio state.

"For historical reasons virtio_gpu does not adhere to virtio migration
scheme" (QEMU's comment): the device class has no save/load of its own, so
the ``virtio`` field carries the common part only, and ``vmstate_virtio_gpu``
adds a field ``virtio-gpu`` of a custom info (``virtio_gpu_save``):

* each 2D resource: ``resource_id`` (nonzero), width, height, format and
  ``iov_cnt`` as be32, per backing entry the guest address (be64) and
  length (be32), then the host image's pixels, ``stride * height`` bytes
  (every format virtio-gpu takes is 32 bits per pixel, so the pixman stride
  is ``width * 4``); a be32 0 ends the list;
* ``vmstate_virtio_gpu_scanouts`` (version 1) inline: ``enable``,
  ``max_outputs`` (must equal the destination's) and that many scanouts.

virtio-vga puts the same section next to its own ``virtio-vga`` one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import attrs

from vmstate import field, state, struct
from vmstate.description import Custom, CustomContext, Description, Field, Record
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError, LimitExceededError, MalformedError
from vmstate.kinds import INT32, UINT32, UINT32_EQUAL, UINT64, varray
from vmstate.typed import description_of
from vmstate.wire import ByteReader

from .parts import NoPart

__all__ = [
    "VIRTIO_GPU", "GPU_FIELD", "GpuResource", "GpuBacking", "GpuScanout", "GpuScanouts",
    "VIRTIO_GPU_MAX_SCANOUTS", "PIXEL_FORMATS",
]

#: include/standard-headers/linux/virtio_gpu.h
VIRTIO_GPU_MAX_SCANOUTS = 16
#: VIRTIO_GPU_FORMAT_* the 2D device accepts (virtio_gpu_get_pixman_format), all 4 bytes per pixel
PIXEL_FORMATS = {1: "B8G8R8A8", 2: "B8G8R8X8", 3: "A8R8G8B8", 4: "X8R8G8B8",
                 67: "R8G8B8A8", 68: "X8B8G8R8", 121: "A8B8G8R8", 134: "R8G8B8X8"}
_BYTES_PER_PIXEL = 4


@state(name="virtio-gpu backing", version=1, minimum_version=1)
class GpuBacking:
    """One guest memory entry backing a resource."""

    addr: int = field(UINT64)
    length: int = field(UINT32)


@state(name="virtio-gpu resource", version=1, minimum_version=1)
class GpuResource:
    """One 2D resource and its pixels (``pixels`` is ``width * 4 * height`` bytes)."""

    resource_id: int = field(UINT32, default=1)
    width: int = field(UINT32)
    height: int = field(UINT32)
    format: int = field(UINT32, default=1)
    iov_cnt: int = field(UINT32)
    backing: list[GpuBacking] = field(varray(struct(GpuBacking), "iov_cnt"))


@state(name="virtio-gpu-one-scanout", version=1, minimum_version=1)
class GpuScanout:
    """One output: the resource shown, its rectangle, and the cursor."""

    resource_id: int = field(UINT32)
    width: int = field(UINT32)
    height: int = field(UINT32)
    x: int = field(UINT32)
    y: int = field(UINT32)
    cursor_resource_id: int = field(UINT32)
    cursor_hot_x: int = field(UINT32)
    cursor_hot_y: int = field(UINT32)
    cursor_pos_x: int = field(UINT32)
    cursor_pos_y: int = field(UINT32)


@state(name="virtio-gpu-scanouts", version=1, minimum_version=1)
class GpuScanouts:
    """``enable`` and the scanouts, one per output (``max_outputs`` of them)."""

    enable: int = field(INT32)
    max_outputs: int = field(UINT32_EQUAL, default=1)
    scanout: list[GpuScanout] = field(varray(struct(GpuScanout), "max_outputs"))


@lru_cache(maxsize=1)
def _resource() -> Description:
    return description_of(GpuResource)


@lru_cache(maxsize=1)
def _scanouts() -> Description:
    return description_of(GpuScanouts)


def _pixel_bytes(resource: Record) -> int:
    return int(resource.fields["width"]) * _BYTES_PER_PIXEL * int(resource.fields["height"])


@attrs.frozen
class _GpuCodec:
    """``virtio_gpu_save``/``virtio_gpu_load``: the resource list, then the scanouts."""

    def decode(self, reader: ByteReader, context: CustomContext) -> Record:
        limits, path = context.limits, context.path
        resources: list[Record] = []
        while True:
            start = reader.offset
            if reader.peek(4) == b"\x00\x00\x00\x00":
                reader.skip(4)
                break
            rpath = (*path, "resources", len(resources))
            if len(resources) >= limits.max_array_count:
                raise LimitExceededError(
                    f"more than limits.max_array_count = {limits.max_array_count} resources", offset=start, path=rpath
                )
            resource = decode(_resource(), reader, 1, limits=limits, path=rpath, _depth=context.depth)
            if resource.fields["format"] not in PIXEL_FORMATS:
                # virtio_gpu_load: an unknown format has no pixman format, the load fails
                raise MalformedError(
                    f"unknown pixel format {resource.fields['format']}", offset=start + 12, path=(*rpath, "format")
                )
            size = _pixel_bytes(resource)
            if size > limits.max_buffer:
                raise LimitExceededError(
                    f"{size} bytes of pixels exceed limits.max_buffer = {limits.max_buffer}",
                    offset=reader.offset,
                    path=(*rpath, "pixels"),
                )
            pixels = bytes(reader.read(size))
            resources.append(attrs.evolve(resource, fields={**resource.fields, "pixels": pixels}))
        # max_outputs sizes the scanout array: check it before the array is read
        head = reader.peek(8)
        outputs = int.from_bytes(head[4:8], "big")
        if len(head) == 8 and not 1 <= outputs <= VIRTIO_GPU_MAX_SCANOUTS:
            raise MalformedError(
                f"max_outputs {outputs} outside 1..{VIRTIO_GPU_MAX_SCANOUTS}",
                offset=reader.offset + 4,
                path=(*path, "scanouts", "max_outputs"),
            )
        scanouts = decode(_scanouts(), reader, 1, limits=limits, path=(*path, "scanouts"), _depth=context.depth)
        return Record(version=1, fields={"resources": resources, "scanouts": scanouts})

    def encode(self, value: Any, context: CustomContext) -> bytes:
        path = context.path
        if not isinstance(value, Record) or not isinstance(value.fields.get("resources"), list):
            raise EncodeError("virtio-gpu needs a Record with resources and scanouts", path=path)
        scanouts = value.fields.get("scanouts")
        if not isinstance(scanouts, Record):
            raise EncodeError("virtio-gpu needs its scanouts", path=(*path, "scanouts"))
        out = []
        for index, resource in enumerate(value.fields["resources"]):
            rpath = (*path, "resources", index)
            if not isinstance(resource, Record) or not resource.fields.get("resource_id"):
                raise EncodeError("a resource must be a Record with a nonzero resource_id", path=rpath)
            pixels = resource.fields.get("pixels")
            want = _pixel_bytes(resource)
            if not isinstance(pixels, (bytes, bytearray)) or len(pixels) != want:
                raise EncodeError(f"pixels must be width * 4 * height = {want} bytes", path=(*rpath, "pixels"))
            fields = {k: v for k, v in resource.fields.items() if k != "pixels"}
            out += [encode(_resource(), attrs.evolve(resource, fields=fields), path=rpath), bytes(pixels)]
        out.append(b"\x00\x00\x00\x00")
        out.append(encode(_scanouts(), scanouts, path=(*path, "scanouts")))
        return b"".join(out)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return {
            "layout": "resources while the next be32 is nonzero, each followed by width * 4 * height bytes "
            "of pixels; a be32 0; then the scanouts",
            "resource": description_to_json(_resource(), _top=False),
            "scanouts": description_to_json(_scanouts(), _top=False),
        }


#: the common part only: virtio-gpu gives the core no save/load
VIRTIO_GPU = NoPart(savevm_name="virtio-gpu")
#: the section's second field, after ``virtio``
GPU_FIELD = Field(name="virtio-gpu", kind=Custom(codec=_GpuCodec(), type_name="virtio-gpu"))
