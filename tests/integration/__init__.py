"""Tests across packages: real QEMU, the installed scripts end to end, the fuzzer."""
