"""Tests of streams.selfdesc: snapshot codecs, hostile snapshots, faults and crashes while writing."""
