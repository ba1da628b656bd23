"""Pre-flight: predict whether a destination QEMU will load a stream, and why not, in QEMU's own words."""

from .profile import Profile, ProfileError, RamSlot, SectionSlot, VirtioSlot, VmsdShape
from .rules import Refusal, Verdict, predict

__all__ = ["Profile", "ProfileError", "RamSlot", "Refusal", "SectionSlot", "Verdict", "VirtioSlot", "VmsdShape", "predict"]
