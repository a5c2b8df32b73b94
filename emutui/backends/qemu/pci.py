"""PCI BARs from ``query-pci`` as memory regions."""

from __future__ import annotations

from typing import Any

from emutui.core.model import MemoryRegion


def bar_regions(pci: Any) -> list[MemoryRegion]:
    out: list[MemoryRegion] = []
    if not isinstance(pci, list):
        return out
    for bus in pci:
        if isinstance(bus, dict):
            _walk(bus.get("devices") or [], int(bus.get("bus", 0)), out)
    return out


def _walk(devices: list[Any], bus: int, out: list[MemoryRegion]) -> None:
    for dev in devices:
        if not isinstance(dev, dict):
            continue
        slot = int(dev.get("slot", 0))
        fn = int(dev.get("function", 0))
        qdev_id = str(dev.get("qdev_id") or "")
        prefix = qdev_id or f"{bus:02x}:{slot:02x}.{fn}"
        desc = str((dev.get("class_info") or {}).get("desc") or "")
        ids = dev.get("id") or {}
        vendor, device = ids.get("vendor"), ids.get("device")
        for reg in dev.get("regions") or []:
            if reg.get("type") != "memory":
                continue  # I/O BARs are port space, not readable with xp
            addr = int(reg.get("address", -1))
            size = int(reg.get("size", 0))
            if addr < 0 or addr == 0xFFFFFFFFFFFFFFFF or size <= 0:
                continue  # not yet assigned by firmware
            label = desc or "PCI device"
            if vendor is not None and device is not None:
                label += f" {int(vendor):04x}:{int(device):04x}"
            out.append(
                MemoryRegion(
                    name=f"{prefix}.bar{int(reg.get('bar', 0))}",
                    base=addr,
                    size=size,
                    access_width=4,  # MMIO: one 32-bit word per access (see specs/qemu.md)
                    description=f"{label} at {bus:02x}:{slot:02x}.{fn}",
                )
            )
        bridge = dev.get("pci_bridge")
        if isinstance(bridge, dict):
            sec = int((bridge.get("bus") or {}).get("secondary", bus))
            _walk(bridge.get("devices") or [], sec, out)
