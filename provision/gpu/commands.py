"""Shell commands that read a host's GPU facts; :mod:`provision.gpu.parsers` reads their output.

Kept apart from the parsers so that the probe's script can be built without loading them.
"""

#: Every NVIDIA PCI function as ``SLOT 0xVENDOR 0xDEVICE 0xCLASS``, read from sysfs, which every
#: Linux host has (a fresh install may lack lspci). The role gpu_stack runs the same script for
#: ``rigforge_components: auto`` under plain ansible-playbook (gpu_stack_pci_sysfs_script).
PCI_SYSFS_SCRIPT = (
    'for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/vendor" 2>/dev/null)" = 0x10de ] && '
    'echo "${d##*/} $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"; done; true'
)
