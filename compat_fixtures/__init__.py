"""The compatibility fixtures and the scripts that make them, importable from the tests.

``python3 compat_fixtures/generate.py`` (and the other scripts) still run as
scripts; tests import ``compat_fixtures.generate`` with the project root on
``sys.path`` (pytest's ``pythonpath``), never by inserting this directory.
"""
