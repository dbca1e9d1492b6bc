"""A host's recorded facts (``rigforge_facts``, as ``rigforge probe`` records them) read back
as the resolver's :class:`~provision.gpu.model.HostFacts`.

The checks, the resolver's check before a run and the run report read facts through here;
none of them depends on how the facts were read from the host (:mod:`provision.probe`).
"""


def host_facts(record: dict | None):
    """``rigforge_facts`` -> the resolver's :class:`HostFacts` (empty when never probed)."""
    from provision.gpu.model import HostFacts
    from provision.gpu.pci_bus import GpuDevice

    if not record:
        return HostFacts(os_id=None, os_version=None, arch=None)
    gpus = tuple(
        GpuDevice(
            slot=g.get("slot", ""),
            class_code=g.get("class", "0300"),
            device_id=g.get("device_id", ""),
            name=g.get("name", ""),
            architecture=g.get("architecture"),
        )
        for g in (record.get("gpus") or [])
    )
    secure = record.get("secure_boot") or {}
    return HostFacts(
        os_id=(record.get("os") or {}).get("id"),
        os_version=(record.get("os") or {}).get("version"),
        arch=record.get("arch"),
        gpus=gpus,
        secure_boot=secure.get("state"),
        secure_boot_validation_disabled=bool(secure.get("validation_disabled")),
        driver_loaded=(record.get("driver") or {}).get("loaded"),
        secure_boot_key=(record.get("secure_boot_key") or {}).get("state"),
    )
