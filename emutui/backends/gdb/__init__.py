"""The CPU as one more peer: a GDB remote serial protocol client (QEMU's gdbstub,
Renode's GDB server), target descriptions, ELF symbols and disassembly."""
