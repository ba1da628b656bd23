"""Helpers shared by the tests: paths, the installed scripts, stream files, strategies, QEMU.

Tests import them as ``tests.support.<module>`` (the project root is on the
import path through pytest's ``pythonpath``); conftest.py only holds hooks
and fixtures, and no test imports another test.
"""
