"""Set and get fields of one decoded section by path, with QEMU's save rules applied after the change.

A section our descriptions decoded is edited in its record, then saved as
QEMU would save the changed state:

* a virtio device section goes through ``VirtIODevice``: ``device_endian``
  and the 64-bit ``guest_features`` can be set whether or not their
  subsections are on the wire (``virtio.device_endian=big``), the
  ``virtio/...`` subsections follow their ``needed`` rules, setting
  ``virtio.num_queues`` grows or cuts the queue list, and a
  ``device_endian`` flip re-expresses the fields QEMU writes in the device's
  byte order (virtio-serial's config space);
* a section (or a virtio device part) declared as a typed state class runs
  its ``pre_save`` and ``needed`` rules again, so dependent fields and
  subsections follow the change.

Every edit is read back after that: one the save rules undo (a
``virtio/device_endian`` field set to the target's default, which QEMU does
not send) is an ``EditError`` saying so, as is one the section's
description cannot encode.  A section decoded only by the vmdesc is edited
field by field with no rules to follow; a raw body cannot be edited.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import attrs

from devices.cpu import Endian, Target
from devices.virtio.device import VIRTIO_NO_VECTOR, VirtIODevice, VirtQueue, virtio_section_of
from devices.virtio.common import VIRTIO_QUEUE_MAX
from streams.records import DeviceState
from vmstate.description import Description, Record
from vmstate.engine import encode
from vmstate.errors import EditError, EncodeError, PathItem
from vmstate.lookup import TYPED_SOURCE
from vmstate.typed import from_record, to_record

from .paths import FieldRef, get_at, set_at, show_path
from .values import kind_at, parse_value, show_value

__all__ = ["MODEL_ALIASES", "Assignment", "edit_section", "get_field"]

Steps = tuple[PathItem, ...]

#: paths of a virtio section that name the device model, not one wire field
_MODEL_PATHS: dict[Steps, str] = {
    ("virtio", "device_endian"): "device_endian",
    ("virtio", "guest_features"): "guest_features",
    ("virtio", "num_queues"): "num_queues",
}
#: a virtio subsection's field that stands for a model path: setting it is setting the model (its
#: subsection then follows the ``needed`` rule, so setting the default drops it)
MODEL_ALIASES: dict[Steps, Steps] = {
    ("virtio", "virtio/device_endian", "device_endian"): ("virtio", "device_endian"),
    ("virtio", "virtio/64bit_features", "guest_features"): ("virtio", "guest_features"),
}
_MODEL_KINDS: dict[str, Steps] = {
    "device_endian": ("virtio/device_endian", "device_endian"),
    "guest_features": ("virtio/64bit_features", "guest_features"),
    "num_queues": ("num_queues",),
}


@attrs.frozen
class Assignment:
    """``SECTION:PATH=VALUE``: a field and the text of its new value."""

    ref: FieldRef
    value: str


def _where(state: DeviceState, steps: Steps) -> str:
    section = state.idstr if state.instance_id == 0 else f"{state.idstr}#{state.instance_id}"
    return f"{section}:{show_path(steps)}"


def _fail(state: DeviceState, steps: Steps, message: str) -> EditError:
    return EditError(message, section=state.idstr, path=steps)


# ------------------------------------------------------------------ reading


def _virtio_kinds(state: DeviceState) -> Description | None:
    section = virtio_section_of(state)
    if section is None:
        return None
    codec = getattr(state.description.fields[0].kind, "codec", None)
    describe = getattr(codec, "value_description", None)
    return describe(section.value) if callable(describe) else None


def get_field(state: DeviceState, steps: Steps, target: Target) -> str:
    """The value at ``steps`` in ``state`` as ``--get`` prints it (a virtio section's model paths included)."""
    model = _MODEL_PATHS.get(steps)
    section = virtio_section_of(state) if state.source == TYPED_SOURCE else None
    if model is not None and section is not None:
        device = section.device(target)
        value: Any = {"device_endian": device.device_endian, "guest_features": device.guest_features,
                      "num_queues": len(device.vqs)}[model]
        kinds = _virtio_kinds(state)
        kind = kind_at(kinds, section.value, _MODEL_KINDS[model]) if kinds is not None else None
        return show_value(int(value), kind)
    _require_fields(state, steps)
    try:
        value = get_at(state.record, steps)
    except EditError as error:
        raise _fail(state, error.path, error.message) from None
    return show_value(value, _kind(state, steps))


def _kind(state: DeviceState, steps: Steps) -> Any:
    if steps and steps[0] == "virtio":
        kinds = _virtio_kinds(state)
        section = virtio_section_of(state)
        if kinds is not None and section is not None:
            return kind_at(kinds, section.value, steps[1:])
    return kind_at(state.description, state.record, steps)


def _require_fields(state: DeviceState, steps: Steps) -> None:
    if not isinstance(state.record, Record):
        raise _fail(state, steps, "this section was kept raw: no description names its fields")


# ------------------------------------------------------------------ writing


def edit_section(state: DeviceState, assignments: Sequence[Assignment], target: Target) -> DeviceState:
    """``state`` with every assignment made and QEMU's save rules applied; ``EditError`` if one cannot be.

    A field set twice takes the last value.
    """
    section = virtio_section_of(state) if state.source == TYPED_SOURCE else None
    if section is not None:
        assignments = [attrs.evolve(a, ref=attrs.evolve(a.ref, steps=MODEL_ALIASES.get(a.ref.steps, a.ref.steps)))
                       for a in assignments]
    assignments = list({a.ref.steps: a for a in assignments}.values())
    if section is not None:
        edited = _edit_virtio(state, assignments, target)
    else:
        record = copy.deepcopy(state.record)
        for assignment in assignments:
            _assign(state, record, state.description, record, assignment.ref.steps, assignment)
        if state.source == TYPED_SOURCE:
            record = _rederived(state.description, record)
        edited = attrs.evolve(state, record=record)
    _check_encodes(edited)
    for assignment in assignments:
        _check_kept(state, edited, assignment, target)
    return edited


def _assign(state: DeviceState, root: Record, description: Description, record: Record, steps: Steps,
            assignment: Assignment, full: Steps | None = None) -> None:
    """Parse ``assignment``'s value by the kind at ``steps`` inside ``record`` and put it there."""
    full = steps if full is None else full
    try:
        current = get_at(record, steps)
    except EditError as error:
        raise _fail(state, full, error.message) from None
    kind = kind_at(description, record, steps)
    value = parse_value(assignment.value, kind, current, _where(state, full))
    set_at(record, steps, value)


def _edit_virtio(state: DeviceState, assignments: Sequence[Assignment], target: Target) -> DeviceState:
    section = virtio_section_of(state)
    assert section is not None
    kinds = _virtio_kinds(state)
    assert kinds is not None
    before = section.device(target)
    record = copy.deepcopy(section.value)
    outer = copy.deepcopy(state.record)  # a field after ``virtio`` (virtio-gpu's, in old layouts)
    model: list[tuple[str, int, Steps]] = []
    for assignment in assignments:
        steps = assignment.ref.steps
        name = _MODEL_PATHS.get(steps)
        if name is not None:
            kind = kind_at(kinds, record, _MODEL_KINDS[name])
            current = {"device_endian": int(before.device_endian), "guest_features": before.guest_features,
                       "num_queues": len(before.vqs)}[name]
            model.append((name, parse_value(assignment.value, kind, current, _where(state, steps)), steps))
            continue
        if steps[0] != "virtio":
            _assign(state, outer, state.description, outer, steps, assignment)
            continue
        _assign(state, record, kinds, record, steps[1:], assignment, full=steps)
    device = VirtIODevice.from_record(section.savevm_name, record, target)
    if device.device_endian != before.device_endian:  # its subsection was edited: the fields it orders follow
        endian, device.device_endian = device.device_endian, before.device_endian
        device.set_device_endian(endian)
    for name, value, steps in model:
        if name == "device_endian":
            if value not in (Endian.LITTLE, Endian.BIG):
                raise _fail(state, steps, f"device_endian must be little (1) or big (2), not {value}")
            device.set_device_endian(Endian(value))
        elif name == "guest_features":
            device.guest_features = value
        else:
            _resize_queues(state, device, value, steps)
    try:
        value_record = device.to_record()
    except EncodeError as error:
        raise _fail(state, ("virtio",), error.message) from None
    part = device.device
    part_description = getattr(section.device_class, "part_description", None)
    if isinstance(part, Record) and callable(part_description):
        value_record.fields["device"] = _rederived(part_description(value_record.fields), part)
    fields = dict(outer.fields, virtio=value_record)
    return attrs.evolve(state, record=Record(version=outer.version, fields=fields, subsections=outer.subsections))


def _resize_queues(state: DeviceState, device: VirtIODevice, count: int, steps: Steps) -> None:
    if not 1 <= count <= VIRTIO_QUEUE_MAX:
        raise _fail(state, steps, f"num_queues must be 1..{VIRTIO_QUEUE_MAX} (VIRTIO_QUEUE_MAX), not {count}")
    if not device.vqs:
        raise _fail(state, steps, "the device has no queue to copy a new queue's layout from")
    last = device.vqs[-1]
    while len(device.vqs) < count:
        device.vqs.append(VirtQueue(num=last.num, align=last.align, num_default=last.num_default,
                                    vector=None if last.vector is None else VIRTIO_NO_VECTOR))
    del device.vqs[count:]


def _rederived(description: Description, record: Record) -> Record:
    """``record`` after its typed state class's ``pre_save`` and ``needed`` rules (as it is, if it has none)."""
    cls = description.cls
    if cls is None:
        return record
    derived = to_record(from_record(cls, record), version=record.version)
    return _merged(record, derived)


def _merged(edited: Record, derived: Record) -> Record:
    """``edited``'s fields valued as ``derived`` has them, then ``derived``'s others; its subsections as decided."""
    fields = {name: _merged_value(value, derived.fields.get(name, value)) for name, value in edited.fields.items()}
    # a field the edit brought onto the wire (an exists test now true) is written with the state's value
    fields.update((name, value) for name, value in derived.fields.items() if name not in fields)
    subsections = {
        name: _merged(edited.subsections[name], sub) if name in edited.subsections else sub
        for name, sub in derived.subsections.items()
    }
    return Record(version=edited.version, fields=fields, subsections=subsections)


def _merged_value(edited: Any, derived: Any) -> Any:
    """A derived value in the shape the edited one has (a nested record keeps only the fields on the wire)."""
    if isinstance(edited, Record) and isinstance(derived, Record):
        return _merged(edited, derived)
    if isinstance(edited, list) and isinstance(derived, list) and len(edited) == len(derived):
        return [_merged_value(e, d) for e, d in zip(edited, derived)]
    return derived


def _check_encodes(state: DeviceState) -> None:
    try:
        encode(state.description, state.record)
    except EncodeError as error:
        raise EditError(error.message, section=state.idstr, path=error.path) from None


def _check_kept(before: DeviceState, after: DeviceState, assignment: Assignment, target: Target) -> None:
    steps = assignment.ref.steps
    wanted = _readback(before, assignment, target)
    try:
        got = get_field(after, steps, target)
    except EditError:
        got = None
    if got != wanted:
        now = "leave it out" if got is None else f"write {got}"
        raise _fail(before, steps, f"set to {wanted}, but QEMU's save rules {now} (a field derived from others, or a "
                                   "subsection sent only when it differs from the default): set what it derives from")


def _readback(state: DeviceState, assignment: Assignment, target: Target) -> str:
    """The assignment's value as ``get_field`` would show it."""
    steps = assignment.ref.steps
    kinds = _virtio_kinds(state) if state.source == TYPED_SOURCE else None
    section = virtio_section_of(state) if kinds is not None else None
    name = _MODEL_PATHS.get(steps)
    if name is not None and kinds is not None and section is not None:
        kind = kind_at(kinds, section.value, _MODEL_KINDS[name])
        return show_value(parse_value(assignment.value, kind, 0, ""), kind)
    kind = _kind(state, steps)
    current = get_at(state.record, steps)
    return show_value(parse_value(assignment.value, kind, current, ""), kind)
