"""virtio-gpu (hw/display/virtio-gpu.c, QEMU 7.2 and 10.0): a second field after the virtio state.

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

QEMU 9.0 added the scanout's framebuffer (``fb.format``, ``bytes_pp``,
``width``, ``height``, ``stride``, ``offset``, be32 each) at the end of each
``virtio-gpu-one-scanout``.  A nested vmsd's version is not on the wire, so
since QEMU 9.0.1 (commit "virtio-gpu: fix v2 migration") they are
``VMSTATE_UINT32_TEST`` fields whose test, ``scanout_vmstate_after_v2``,
reads the device property ``x-scanout-vmstate-version``: 2 by default, 1 in
``hw_compat_8_2``, so machine types up to 8.2 (7.2's, under any QEMU) keep
7.2's layout and 9.0 on (``pc-i440fx-10.0``) add 24 bytes per scanout.

But the test is handed the scanout it gates, and finds the device with
``container_of(opaque, VirtIOGPUBase, scanout)``, which is right for
``scanout[0]`` only: for scanout *i* it reads a byte ``i`` scanouts past the
property, some other field of ``VirtIOGPU``.  So only the first scanout
follows the machine type; the others carry the framebuffer or not by
whatever that byte holds.  QEMU 10.0.2 shows it: ``virtio-vga,max_outputs=2``
on ``pc-i440fx-7.2`` sends scanout 0 without and scanout 1 with the fields
(``compat_fixtures/streams/pc-10.0-on-7.2-virtio-vga.mig.xz``, 116 bytes:
8 + 4 + 40 + 64).  The stream carries neither the property nor the byte: the
section has four layouts (first scanout with or without, the others with or
without), and the section end picks one (:data:`GPU_FIELD` is 7.2's,
:data:`GPU_FIELD_SCANOUT_V2` 10.0's default, :data:`GPU_FIELD_ALTERNATIVES`
all four).  A destination loads by its own property and byte: such a stream
may not load where the bytes differ, which is QEMU's bug, not ours.
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
    "VIRTIO_GPU", "GPU_FIELD", "GPU_FIELD_SCANOUT_V2", "GPU_FIELD_ALTERNATIVES", "GpuResource", "GpuBacking", "GpuScanout", "GpuScanouts",
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


def _scanout_v2(view: Any, version: int) -> bool:
    # scanout_vmstate_after_v2: the device property x-scanout-vmstate-version, offered as a scope
    return int(getattr(view, "scanout_vmstate_version", 1)) >= 2


@state(name="virtio-gpu-one-scanout", version=1, minimum_version=1)
class GpuScanout:
    """One output: the resource shown, its rectangle, the cursor and (property version 2) the framebuffer."""

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
    fb_format: int = field(UINT32, exists=_scanout_v2)
    fb_bytes_pp: int = field(UINT32, exists=_scanout_v2)
    fb_width: int = field(UINT32, exists=_scanout_v2)
    fb_height: int = field(UINT32, exists=_scanout_v2)
    fb_stride: int = field(UINT32, exists=_scanout_v2)
    fb_offset: int = field(UINT32, exists=_scanout_v2)


@state(name="virtio-gpu-scanouts head", version=1, minimum_version=1)
class GpuScanoutsHead:
    """``vmstate_virtio_gpu_scanouts`` up to its scanout array."""

    enable: int = field(INT32)
    max_outputs: int = field(UINT32_EQUAL, default=1)


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


@lru_cache(maxsize=1)
def _head() -> Description:
    return description_of(GpuScanoutsHead)


@lru_cache(maxsize=1)
def _scanout() -> Description:
    return description_of(GpuScanout)


def _pixel_bytes(resource: Record) -> int:
    return int(resource.fields["width"]) * _BYTES_PER_PIXEL * int(resource.fields["height"])


@attrs.frozen
class _GpuCodec:
    """``virtio_gpu_save``/``virtio_gpu_load``: the resource list, then the scanouts.

    ``first_fb``: scanout 0 carries its framebuffer (the sender's ``x-scanout-vmstate-version``
    is 2); ``rest_fb``: the other scanouts do (see the module for why they may differ).
    """

    first_fb: bool = False
    rest_fb: bool = False

    def _scopes(self, index: int) -> tuple[dict[str, Any], ...]:
        with_fb = self.first_fb if index == 0 else self.rest_fb
        return ({"scanout_vmstate_version": 2 if with_fb else 1},)

    def _decode_scanouts(self, reader: ByteReader, context: CustomContext) -> Record:
        path = (*context.path, "scanouts")
        head = decode(_head(), reader, 1, limits=context.limits, path=path, _depth=context.depth)
        scanouts = [
            decode(_scanout(), reader, 1, limits=context.limits, path=(*path, "scanout", i), scopes=self._scopes(i),
                   _depth=context.depth)
            for i in range(int(head.fields["max_outputs"]))
        ]
        return Record(version=1, fields={**head.fields, "scanout": scanouts})

    def _encode_scanouts(self, scanouts: Record, path: tuple[Any, ...]) -> bytes:
        path = (*path, "scanouts")
        items = scanouts.fields.get("scanout")
        if not isinstance(items, list) or len(items) != scanouts.fields.get("max_outputs"):
            raise EncodeError("scanout must be a list of max_outputs scanouts", path=(*path, "scanout"))
        head = Record(version=1, fields={k: v for k, v in scanouts.fields.items() if k != "scanout"})
        out = [encode(_head(), head, path=path)]
        for i, item in enumerate(items):
            if not isinstance(item, Record):
                raise EncodeError("a scanout must be a Record", path=(*path, "scanout", i))
            out.append(encode(_scanout(), item, path=(*path, "scanout", i), scopes=self._scopes(i)))
        return b"".join(out)

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
        scanouts = self._decode_scanouts(reader, context)
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
        out.append(self._encode_scanouts(scanouts, path))
        return b"".join(out)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return {
            "layout": "resources while the next be32 is nonzero, each followed by width * 4 * height bytes "
            "of pixels; a be32 0; then the scanouts",
            "framebuffer": {"first scanout": self.first_fb, "other scanouts": self.rest_fb},
            "resource": description_to_json(_resource(), _top=False),
            "scanouts": description_to_json(_scanouts(), _top=False),
        }


#: the common part only: virtio-gpu gives the core no save/load
VIRTIO_GPU = NoPart(savevm_name="virtio-gpu")
def _gpu_field(first_fb: bool, rest_fb: bool) -> Field:
    return Field(name="virtio-gpu", kind=Custom(codec=_GpuCodec(first_fb, rest_fb), type_name="virtio-gpu"))


#: the section's second field, after ``virtio``: scanouts as QEMU 7.2 and machine types <= 8.2 send them
GPU_FIELD = _gpu_field(False, False)
#: every scanout with its framebuffer (x-scanout-vmstate-version 2: machine types >= 9.0)
GPU_FIELD_SCANOUT_V2 = _gpu_field(True, True)
#: the layouts after the first, in the order tried: 9.0's, then the two that mix (see the module)
GPU_FIELD_ALTERNATIVES = (GPU_FIELD_SCANOUT_V2, _gpu_field(False, True), _gpu_field(True, False))
