"""Build the bare-metal AArch64 ELF that resets every virtio-mmio device.

Why this program exists: QEMU records a virtio device's byte order
(``device_endian``) when the device is reset.  A reset triggered by a guest
store from a vCPU takes the endianness that vCPU currently uses for data
(``virtio_reset()`` in QEMU's hw/virtio/virtio.c asks the CPU through
``cpu_virtio_is_big_endian()``; for AArch64 at EL1 that is SCTLR_EL1.EE).  A
reset done by QEMU itself (machine creation, system reset) takes the target's
default, little-endian for qemu-system-aarch64.  So a guest that sets
SCTLR_EL1.EE and then writes 0 to each virtio-mmio Status register leaves
every device with device_endian = BIG, and the next migration stream carries
the ``virtio/device_endian`` subsection with value 2.  The control program is
identical except that it leaves EE clear (the ORR becomes a NOP).

The dozen instructions are encoded by hand (no assembler needed); the
encodings follow the Arm Architecture Reference Manual (ARM DDI 0487), and
each is spelt out in :data:`PROGRAM`.  ``qemu-system-aarch64 -d in_asm``
disassembles them as a cross-check.

Layout assumed (QEMU ``-M virt``): RAM from 0x40000000, 32 virtio-mmio
transports at 0x0a000000 + 0x200 * i, Status register at offset 0x70 (the
virtio-mmio register map of the virtio specification).  Writing a transport
with no device behind it is harmless.
"""
from __future__ import annotations

import struct

LOAD_ADDR = 0x40080000  # in RAM, clear of the DTB QEMU puts at the RAM base
VIRTIO_MMIO_BASE = 0x0A000000
VIRTIO_MMIO_STRIDE = 0x200
VIRTIO_MMIO_COUNT = 32  # transports on the virt board
VIRTIO_MMIO_STATUS = 0x70
SCTLR_EE = 1 << 25  # SCTLR_EL1.EE: data accesses at EL1 are big-endian

NOP = 0xD503201F
ORR_X0_EE = 0xB2670000  # orr x0, x0, #(1 << 25): N=1 immr=39 imms=0

# (encoding, assembly) pairs; the B.NE offset is relative to its own address.
PROGRAM: list[tuple[int, str]] = [
    (0xD5381000, "mrs  x0, sctlr_el1"),
    (ORR_X0_EE, "orr  x0, x0, #0x2000000      // set EE (big-endian case only)"),
    (0xD5181000, "msr  sctlr_el1, x0"),
    (0xD5033FDF, "isb                          // EE takes effect for what follows"),
    (0xD2A14001, "movz x1, #0x0a00, lsl #16    // first virtio-mmio transport"),
    (0xD2800402, "movz x2, #32                 // transport count"),
    (0xB900703F, "str  wzr, [x1, #0x70]        // Status := 0 -> guest-initiated reset"),
    (0x91080021, "add  x1, x1, #0x200"),
    (0xF1000442, "subs x2, x2, #1"),
    (0x54FFFFA1, "b.ne .-12                    // back to the str"),
    (0xD5033F9F, "dsb  sy"),
    (0xD503207F, "wfi"),
    (0x17FFFFFF, "b    .-4                     // back to the wfi, forever"),
]


def code(big_endian: bool) -> bytes:
    """The machine code, little-endian words (AArch64 fetches instructions LE always)."""
    words = [w if (w != ORR_X0_EE or big_endian) else NOP for w, _ in PROGRAM]
    return struct.pack(f"<{len(words)}I", *words)


def elf(big_endian: bool) -> bytes:
    """A minimal ELF64 executable: header, one PT_LOAD segment, the code."""
    text = code(big_endian)
    ehsize, phentsize = 64, 56
    offset = ehsize + phentsize  # the code follows the single program header
    header = struct.pack(
        "<4sBBBBB7sHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0, 0, b"\x00" * 7,  # ELF64, little-endian, SysV ABI
        2, 183, 1,                                # ET_EXEC, EM_AARCH64, EV_CURRENT
        LOAD_ADDR, ehsize, 0,                     # entry, program headers, no sections
        0, ehsize, phentsize, 1, 64, 0, 0)        # flags, sizes, 1 phdr, no shdrs
    phdr = struct.pack(
        "<IIQQQQQQ",
        1, 5,                                     # PT_LOAD, R+X
        offset, LOAD_ADDR, LOAD_ADDR,             # file offset, vaddr, paddr
        len(text), len(text), 8)                  # filesz, memsz, align
    return header + phdr + text


def listing(big_endian: bool) -> str:
    """Human-readable listing of the program as built."""
    lines = []
    for i, (word, asm) in enumerate(PROGRAM):
        if word == ORR_X0_EE and not big_endian:
            word, asm = NOP, "nop                          // (control: EE left clear)"
        lines.append(f"{LOAD_ADDR + 4 * i:#010x}: {word:08x}  {asm}")
    return "\n".join(lines)
