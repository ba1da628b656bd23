"""Tests of vmstate.compat: the static and dynamic compatibility checks, fixtures, schema sources."""
