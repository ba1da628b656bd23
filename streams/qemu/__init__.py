"""QEMU's binary savevm/migration stream: read and write it record by record."""

from streams.records import *  # noqa: F403
from streams.records import __all__ as _records_all
from vmstate.lookup import DescriptionLookup

from .check import CheckReport, SectionReport, check_stream
from .reader import DEFAULT_PAGE_SIZE, StreamReader
from .summary import summarize
from .writer import StreamWriter, encode_record

__all__ = ["summarize", "check_stream", "CheckReport", "SectionReport", "StreamReader", "StreamWriter", "encode_record", "DescriptionLookup", "DEFAULT_PAGE_SIZE", *_records_all]
