"""Shell commands that read a host's facts; the parsers (:mod:`provision.gpu.parsing` lists
them) read their output.

Kept apart from the parsers so that the probe's script (:data:`provision.probe.SCRIPT`) can be
built without loading them. Each command is the bare command: the probe's script adds the
redirections and guards around it.
"""

OS_RELEASE = "cat /etc/os-release"
KERNEL_RELEASE = "uname -r"
MACHINE = "uname -m"
MEMINFO_TOTAL = "grep '^MemTotal:' /proc/meminfo"
DF_ROOT = "df -P -k /"
LSPCI = "lspci -nn -d 10de:"

#: Every NVIDIA PCI function as ``SLOT 0xVENDOR 0xDEVICE 0xCLASS``, read from sysfs, which every
#: Linux host has (a fresh install may lack lspci). The role gpu_stack runs the same script for
#: ``rigforge_components: auto`` under plain ansible-playbook (gpu_stack_pci_sysfs_script).
PCI_SYSFS_SCRIPT = (
    'for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/vendor" 2>/dev/null)" = 0x10de ] && '
    'echo "${d##*/} $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"; done; true'
)

PROC_DRIVER_VERSION = "cat /proc/driver/nvidia/version"

#: parse_nvidia_smi_query reads the query's output positionally, in this order.
NVIDIA_SMI_QUERY_FIELDS = ("index", "name", "driver_version", "memory.total", "pci.bus_id")
NVIDIA_SMI_QUERY = f"nvidia-smi --query-gpu={','.join(NVIDIA_SMI_QUERY_FIELDS)} --format=csv,noheader,nounits"

MOKUTIL_SB_STATE = "mokutil --sb-state"
#: ``$k`` is the probe script's: the key DKMS signs modules with on that host.
MOKUTIL_TEST_KEY = 'mokutil --test-key "$k"'

#: The nvidia_driver check runs it on a provisioned host.
DKMS_STATUS = "dkms status"
#: The cuda check runs it by nvcc's path: a CUDA install leaves /usr/local/cuda/bin off PATH.
NVCC_VERSION = "nvcc --version"

#: Parser name (``parse_<name>``, the folder of its recorded outputs under
#: tests/unit/data/gpu/) -> the command whose output it reads. A parser of nothing rigforge
#: runs (the plain nvidia-smi table; cudnn_version.h, read as a file) has no entry.
FACT_COMMANDS: dict[str, str] = {
    "os_release": OS_RELEASE,
    "meminfo_total_mib": MEMINFO_TOTAL,
    "df_avail_gib": DF_ROOT,
    "lspci": LSPCI,
    "proc_driver_version": PROC_DRIVER_VERSION,
    "nvidia_smi_query": NVIDIA_SMI_QUERY,
    # The probe classifies the query's output when nvidia-smi fails.
    "nvidia_smi_failure": NVIDIA_SMI_QUERY,
    "mokutil_sb_state": MOKUTIL_SB_STATE,
    "mokutil_test_key": MOKUTIL_TEST_KEY,
    "dkms_status": DKMS_STATUS,
    "nvcc_version": NVCC_VERSION,
}
