"""The project's tests, a package so that same-named test files may sit in different folders (see README.md)."""
