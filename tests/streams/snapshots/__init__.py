"""Tests of streams.snapshots: snapshot codecs, hostile snapshots, faults and crashes while writing."""
