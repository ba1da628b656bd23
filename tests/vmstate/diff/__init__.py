"""Tests of vmstate.diff: pages, filters, value trees, whole-stream comparisons."""
