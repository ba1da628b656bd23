"""Declarative VMState: describe device state once, decode and encode it."""

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

__all__ = [
    "Array", "Bool", "Buffer", "Description", "Field", "Int", "Items", "Kind", "Prefixed", "Record",
    "Struct", "Unused", "decode", "encode",
    "VMStateError", "DescriptionError", "EncodeError", "DecodeError", "TruncatedError", "MalformedError",
    "LimitExceededError", "VersionError", "UnknownSubsectionError", "UnknownSectionError", "UnsupportedError",
    "Limits", "DEFAULT_LIMITS",
    "state", "field", "Subsection", "description_of", "to_record", "from_record", "load", "save", "struct",
    "ByteReader", "ByteWriter", "__version__",
]
