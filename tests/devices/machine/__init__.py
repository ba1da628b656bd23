"""Tests of devices.machine: the x86 and ppc64 machine sections."""
