"""Committed inputs of generate_live.py: the guest /init, the initramfs and bare-metal ELF builders."""
