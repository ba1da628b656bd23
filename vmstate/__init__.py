"""Declarative VMState: describe device state once, decode and encode it.

The names below are imported when first used (``vmstate._lazy``): importing
``vmstate`` alone, as every command does, costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _lazy

if TYPE_CHECKING:
    from .description import Array, Bool, Buffer, Description, Field, Int, Items, Kind, Prefixed, Record, Struct, Unused
    from .engine import decode, encode
    from .errors import (
        DecodeError,
        DescriptionError,
        EncodeError,
        LimitExceededError,
        MalformedError,
        TruncatedError,
        UnknownSectionError,
        UnknownSubsectionError,
        UnsupportedError,
        VersionError,
        VMStateError,
    )
    from .limits import DEFAULT_LIMITS, Limits
    from .typed import Subsection, description_of, field, from_record, load, save, state, struct, to_record
    from .wire import ByteReader, ByteWriter

__version__ = "0.1.0"

_NAMES = _lazy.exports({
    ".description": ("Array", "Bool", "Buffer", "Description", "Field", "Int", "Items", "Kind", "Prefixed", "Record",
                     "Struct", "Unused"),
    ".engine": ("decode", "encode"),
    ".errors": ("VMStateError", "DescriptionError", "EncodeError", "DecodeError", "TruncatedError", "MalformedError",
                "LimitExceededError", "VersionError", "UnknownSubsectionError", "UnknownSectionError",
                "UnsupportedError"),
    ".limits": ("Limits", "DEFAULT_LIMITS"),
    ".typed": ("state", "field", "Subsection", "description_of", "to_record", "from_record", "load", "save", "struct"),
    ".wire": ("ByteReader", "ByteWriter"),
})

__all__ = [*_NAMES, "__version__"]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _NAMES, name)
