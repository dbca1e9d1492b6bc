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

#: The health checks' commands (issue #15). None is in the probe's script: the checks run them.
#: parse_kernel_xid reads this boot's kernel log (dmesg needs root where kernel.dmesg_restrict
#: is set; journalctl -k needs the systemd-journal or adm group, or root).
KERNEL_LOG = "journalctl -k -b --no-pager"
OLLAMA_PS = "ollama ps"
#: parse_nvidia_smi_health reads the query's output positionally, in this order. Every name is
#: in the --help-query-gpu of the 590, 595 and 610 drivers (utkuozdemir/nvidia_gpu_exporter's
#: captures) and of an older driver's copy (search-index file id 5945217980). That copy has no
#: remapped_rows.* among them (the newer drivers do): they have a query of their own.
NVIDIA_SMI_HEALTH_FIELDS = (
    "index", "uuid", "pci.bus_id",
    "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current", "pcie.link.width.max",
    "ecc.errors.uncorrected.volatile.total", "retired_pages.pending",
    "persistence_mode", "power.limit", "enforced.power.limit", "power.default_limit",
)
NVIDIA_SMI_HEALTH = (
    f"nvidia-smi --query-gpu={','.join(NVIDIA_SMI_HEALTH_FIELDS)} --format=csv,noheader,nounits"
)
#: gpu_uuid as in a public recording of this query (tests/unit/data/gpu/nvidia_smi_remapped_rows/):
#: the health query's uuid joins the two.
NVIDIA_SMI_REMAPPED_ROWS_FIELDS = (
    "gpu_uuid", "remapped_rows.correctable", "remapped_rows.uncorrectable", "remapped_rows.pending",
    "remapped_rows.failure",
)
NVIDIA_SMI_REMAPPED_ROWS = (
    f"nvidia-smi --query-remapped-rows={','.join(NVIDIA_SMI_REMAPPED_ROWS_FIELDS)}"
    " --format=csv,noheader,nounits"
)
#: The container check: NVIDIA's sample workload (the container toolkit's install guide), with -L
#: for a short answer.
DOCKER_GPU_SMOKE = "docker run --rm --gpus all ubuntu nvidia-smi -L"
#: The PyTorch check, run in the environment that holds torch (stderr carries its warnings).
TORCH_CUDA = "python3 -c 'import torch; print(torch.cuda.is_available())'"

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
    "kernel_xid": KERNEL_LOG,
    "ollama_ps": OLLAMA_PS,
    "nvidia_smi_health": NVIDIA_SMI_HEALTH,
    "nvidia_smi_remapped_rows": NVIDIA_SMI_REMAPPED_ROWS,
    "container_gpu_failure": DOCKER_GPU_SMOKE,
    "torch_cuda": TORCH_CUDA,
}
