"""provision/gpu/pci_bus.py: GPUs on the PCI bus (recorded lspci outputs: test_recorded_outputs.py)."""

from provision.gpu.pci_bus import parse_lspci, parse_sysfs_pci


def test_lspci_label_falls_back_to_the_chip_then_the_id():
    (gpu,) = parse_lspci("01:00.0 3D controller [0302]: NVIDIA Corporation Device [10de:3340]\n")
    assert gpu.architecture is None and gpu.label == "10de:3340"


def test_lspci_label_is_the_bracketed_name():
    (gpu,) = parse_lspci("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 "
                         "[GeForce RTX 4090] [10de:2684] (rev a1)\n")
    assert (gpu.label, gpu.architecture, gpu.class_code) == ("GeForce RTX 4090", "Ada", "0300")


def test_sysfs_lists_only_nvidia_display_functions():
    text = "0000:01:00.0 0x10de 0x2684 0x030000\n0000:01:00.1 0x10de 0x22ba 0x040300\n"
    (gpu,) = parse_sysfs_pci(text)
    assert (gpu.slot, gpu.device_id, gpu.name) == ("0000:01:00.0", "2684", "")
