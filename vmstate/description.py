"""Wire descriptions as data: field kinds, fields, descriptions, records.

A ``Description`` mirrors QEMU's ``VMStateDescription``: a name, a version
window, an ordered tuple of fields and an ordered tuple of subsections, each
subsection itself a ``Description`` with a ``needed`` predicate.  Field kinds
map QEMU's ``VMSTATE_*`` macros to keywords: ``since_version`` (``_V``),
``exists`` (``_TEST``), ``length_from``/``count_from`` (``VBUFFER``/
``VARRAY``), ``multiply`` (``_MULTIPLY``), ``Unused`` (``VMSTATE_UNUSED``).

Decoded values travel as ``Record`` trees (version, fields, subsections);
typed attrs state classes (see ``vmstate.typed``) convert to and from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, Union, overload

import attrs

from .errors import DescriptionError

if TYPE_CHECKING:
    from .limits import Limits
    from .wire import ByteReader

__all__ = [
    "LazyLayouts",
    "Int",
    "Bool",
    "Buffer",
    "Prefixed",
    "Unused",
    "Array",
    "Items",
    "Struct",
    "Custom",
    "CustomCodec",
    "CustomContext",
    "Kind",
    "Field",
    "Description",
    "Record",
    "ExistsTest",
    "NeededTest",
    "LITTLE_ENDIAN_SUFFIX",
]

ExistsTest = Callable[[Any, int], bool]
NeededTest = Callable[[Any], bool]

_INT_NAMES = {
    (1, False): "uint8",
    (2, False): "uint16",
    (4, False): "uint32",
    (8, False): "uint64",
    (1, True): "int8",
    (2, True): "int16",
    (4, True): "int32",
    (8, True): "int64",
}


#: what the auto-name of a little-endian ``Int`` ends in (``uint32 little-endian``).  Not " le": QEMU's
#: ``int32 le`` is a big-endian int32 that must be *less or equal* on load (vmstate/kinds.py INT32_LE),
#: and schema files written before this name carry ``uint32 le`` with ``byte_order`` little.
LITTLE_ENDIAN_SUFFIX = " little-endian"


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 0:
        raise DescriptionError(f"{name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class Int:
    """An integer of ``width`` bytes (QEMU's int/uint infos).

    The migration core writes every integer big-endian; ``little=True`` is
    for host-order blobs QEMU copies verbatim (e.g. ``VirtQueueElementOld``),
    which are little-endian on the x86_64 and aarch64 hosts we model.
    """

    width: int
    signed: bool = False
    little: bool = False
    #: QEMU's info name, e.g. ``uint32``, ``int32 equal``, ``timer``
    type_name: str = ""
    #: names of values (a C enum's), as ``(value, name)`` pairs: text output
    #: shows ``little (1)``; the value on the wire and in JSON stays the number
    names: tuple[tuple[int, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.width not in (1, 2, 4, 8):
            raise DescriptionError(f"integer width must be 1, 2, 4 or 8, got {self.width}")
        if not self.type_name:
            name = _INT_NAMES[(self.width, self.signed)]
            little = self.little and self.width > 1
            object.__setattr__(self, "type_name", f"{name}{LITTLE_ENDIAN_SUFFIX}" if little else name)

    @property
    def minimum(self) -> int:
        return -(1 << (8 * self.width - 1)) if self.signed else 0

    @property
    def maximum(self) -> int:
        bits = 8 * self.width - (1 if self.signed else 0)
        return (1 << bits) - 1


@attrs.frozen(kw_only=True)
class Bool:
    """One byte, 0 or 1 on save; any nonzero loads as true (QEMU's ``bool``).

    A nonzero byte other than 1 is kept as its integer so re-encoding is
    lossless.
    """

    type_name: str = "bool"


@attrs.frozen(kw_only=True)
class Buffer:
    """Raw bytes: a fixed ``size``, or ``length_from`` a sibling field times ``multiply``."""

    size: int | None = None
    length_from: str | None = None
    multiply: int = 1
    type_name: str = "buffer"
    #: the bytes are a (NUL-padded) name such as a machine type: text output
    #: shows them quoted; JSON keeps the hex
    text: bool = False

    def __attrs_post_init__(self) -> None:
        if (self.size is None) == (self.length_from is None):
            raise DescriptionError("a buffer needs exactly one of size= or length_from=")
        _check_positive("size", self.size)
        if self.multiply < 1:
            raise DescriptionError(f"multiply must be >= 1, got {self.multiply}")


@attrs.frozen(kw_only=True)
class Prefixed:
    """Bytes preceded by their own big-endian length of ``prefix_width`` bytes."""

    prefix_width: int = 1
    type_name: str = "prefixed_buffer"

    def __attrs_post_init__(self) -> None:
        if self.prefix_width not in (1, 2, 4):
            raise DescriptionError(f"prefix width must be 1, 2 or 4, got {self.prefix_width}")


@attrs.frozen(kw_only=True)
class Unused:
    """Padding bytes left where a field was removed (``VMSTATE_UNUSED``).

    QEMU writes zeros and skips them on load; the bytes read are kept so that a
    stream re-encodes exactly even if a sender put something there.
    """

    size: int
    type_name: str = "unused_buffer"

    def __attrs_post_init__(self) -> None:
        _check_positive("size", self.size)


@attrs.frozen(kw_only=True)
class Array:
    """Elements of one kind: a fixed ``count``, or ``count_from`` a sibling field."""

    element: "Kind"
    count: int | None = None
    count_from: str | None = None
    multiply: int = 1
    #: added to ``count_from`` * ``multiply``: QEMU's "n - 1" tmp counters
    #: (virtio-net's ``curr_queue_pairs_1``)
    adjust: int = 0

    def __attrs_post_init__(self) -> None:
        if (self.count is None) == (self.count_from is None):
            raise DescriptionError("an array needs exactly one of count= or count_from=")
        _check_positive("count", self.count)
        if self.multiply < 1:
            raise DescriptionError(f"multiply must be >= 1, got {self.multiply}")

    @property
    def type_name(self) -> str:
        return self.element.type_name


@attrs.frozen(kw_only=True)
class Items:
    """A fixed sequence whose elements each have their own kind.

    QEMU's vmdesc expands arrays of structs element by element when elements
    differ (e.g. in which subsections they sent); this is that shape.
    """

    elements: tuple["Kind", ...]

    @property
    def type_name(self) -> str:
        return self.elements[0].type_name if self.elements else "items"


@attrs.frozen(kw_only=True)
class Struct:
    """A nested description inlined without a header (``VMSTATE_STRUCT``).

    It is loaded at its own current version unless ``version`` pins one
    (``VMSTATE_VSTRUCT``).
    """

    description: "Description"
    version: int | None = None
    type_name: str = "struct"


@attrs.frozen(kw_only=True)
class CustomContext:
    """What a custom codec gets from the engine: limits, where it is, what came before."""

    limits: "Limits"
    path: tuple[str | int, ...]
    #: version of the description the field belongs to (the section version at top level)
    version: int
    #: the enclosing decoded (or encoded) fields, innermost last
    scopes: tuple[dict[str, Any], ...]
    depth: int


class CustomCodec(Protocol):
    """Reads and writes one field's bytes itself (QEMU's ``VMStateInfo`` get/put)."""

    def decode(self, reader: "ByteReader", context: CustomContext) -> Any:
        """Read the field's value; raise our ``DecodeError`` family on bad input."""

    def encode(self, value: Any, context: CustomContext) -> bytes:
        """Return the field's bytes; raise ``EncodeError`` if ``value`` cannot be written.

        The engine holds codecs to this: another exception for a value of the
        wrong shape (``TypeError``, ``KeyError``, ...) reaches the caller as an
        ``EncodeError`` at the field's path, the original as its cause.
        """

    def describe(self) -> dict[str, Any]:
        """A JSON-ready account of the layout this codec reads and writes."""


@attrs.frozen(kw_only=True)
class Custom:
    """A field whose layout is code, not data: QEMU's ``VMSTATE_SINGLE`` with a custom info.

    QEMU keeps a few such fields (the ``virtio`` info behind every virtio
    device section is one); the codec must still name every byte it reads.
    """

    codec: CustomCodec = attrs.field(eq=False)
    type_name: str


Kind = Union[Int, Bool, Buffer, Prefixed, Unused, Array, Items, Struct, Custom]


@attrs.frozen(kw_only=True)
class Field:
    """One named field: its kind and when it is on the wire."""

    name: str
    kind: Kind
    #: present only in streams of at least this version (QEMU's ``_V``)
    since_version: int = 0
    #: present only when ``exists(state_view, version)`` holds (QEMU's ``_TEST``)
    exists: ExistsTest | None = attrs.field(default=None, eq=False)
    #: the state class attribute holding the value, when ``name`` (QEMU's, e.g. ``env.regs``) is no identifier
    attribute: str | None = None


@attrs.frozen(kw_only=True)
class Description:
    """A versioned list of fields plus optional subsections (a QEMU vmsd)."""

    name: str
    version: int
    minimum_version: int = 0
    fields: tuple[Field, ...] = ()
    subsections: tuple["Description", ...] = ()
    #: subsections only: sent when ``needed(state)`` holds; None = always
    needed: NeededTest | None = attrs.field(default=None, eq=False)
    #: typed state class this description was declared on, if any
    cls: type | None = attrs.field(default=None, eq=False)
    pre_save: Callable[[Any], None] | None = attrs.field(default=None, eq=False)
    pre_load: Callable[[Any, int], None] | None = attrs.field(default=None, eq=False)
    post_load: Callable[[Any, int], None] | None = attrs.field(default=None, eq=False)
    #: other layouts of the same section, for a configuration fact the stream does not carry
    #: (virtio-net's backend queue count): a reader tries them, in order, when this one does not fit;
    #: they are ordered by growing size, so once the input ends inside one, the later ones are skipped
    #: (a ``LazyLayouts`` builds each on first use: piix4_pm has one per memory slot count)
    alternatives: Sequence["Description"] = attrs.field(default=(), eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.name or len(self.name.encode()) > 255:
            raise DescriptionError(f"description name must be 1-255 bytes: {self.name!r}")
        if not 0 <= self.minimum_version <= self.version:
            raise DescriptionError(
                f"{self.name}: minimum_version {self.minimum_version} "
                f"outside 0..version {self.version}"
            )
        names = [f.name for f in self.fields]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise DescriptionError(f"{self.name}: duplicate field names {sorted(duplicates)}")
        for sub in self.subsections:
            # QEMU's loader matches subsections by a plain prefix compare with
            # the parent's name (migration/vmstate.c, vmstate_subsection_load);
            # ours may carry a variant after "@" (``cpu@x86_64``), which is no part of it.
            if not sub.name.startswith(self.vmsd_name):
                raise DescriptionError(
                    f"subsection {sub.name!r} must start with its parent's name {self.name!r}"
                )

    def layouts(self) -> Sequence["Description"]:
        """This description, then its alternatives: the order a reader tries them in (built as reached)."""
        alternatives = self.alternatives
        if not alternatives:
            return (self,)
        return LazyLayouts(1 + len(alternatives), lambda i: self if i == 0 else alternatives[i - 1])

    @property
    def vmsd_name(self) -> str:
        """QEMU's vmsd name: the name up to a variant suffix such as ``@x86_64`` or ``@pci``."""
        return self.name.split("@", 1)[0]

    def subsection(self, name: str) -> "Description | None":
        """Return the subsection called ``name``, if declared."""
        for sub in self.subsections:
            if sub.name == name:
                return sub
        return None


@attrs.define
class Record:
    """Decoded values of one description at one version.

    ``fields`` holds the fields that were on the wire, in wire order;
    ``subsections`` the subsections that were, in wire order.
    """

    version: int
    fields: dict[str, Any] = attrs.Factory(dict)
    subsections: dict[str, "Record"] = attrs.Factory(dict)


class LazyLayouts(Sequence["Description"]):
    """``count`` alternative layouts, ``make(i)`` building the i-th on first use (then kept)."""

    def __init__(self, count: int, make: Callable[[int], "Description"]) -> None:
        self._made: list[Description | None] = [None] * count
        self._make = make

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> "Description": ...
    @overload
    def __getitem__(self, index: slice) -> list["Description"]: ...
    def __getitem__(self, index: int | slice) -> "Description | list[Description]":
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        made = self._made[index]  # IndexError past the end, as a sequence should
        if made is None:
            made = self._made[index] = self._make(range(len(self))[index])
        return made
