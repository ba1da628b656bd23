"""Tests of the vmstate core: descriptions, engine, compiled plan, schema."""
