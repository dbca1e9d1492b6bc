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

#: Sets ``$k`` to the key DKMS signs modules with (dkms's prepare_signing: Ubuntu's
#: update-secureboot-policy key, else its own, unless /etc/dkms/framework.conf names another):
#: the probe's script and the health check that explains an unloaded module both use it.
MOK_SIGNING_KEY = r"""k=/var/lib/dkms/mok.pub
case "$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')" in
  ubuntu*) k=/var/lib/shim-signed/mok/MOK.der;;
esac
c=$(sed -n 's/^[[:space:]]*mok_certificate=//p' /etc/dkms/framework.conf /etc/dkms/framework.conf.d/*.conf \
  2>/dev/null | tail -n 1 | tr -d "\"'")
[ -n "$c" ] && k=$c"""

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

#: The workload checks' commands (provision/checks/test_*_workload.py; judged in
#: provision/gpu/workload.py). The recorded outputs of the container and PyTorch folders were
#: printed by the shapes above (DOCKER_GPU_SMOKE, TORCH_CUDA): the texts the parsers read are
#: the same whatever the image, the device flags or the rest of the script.
#: The host's GPUs, one ``GPU N: NAME (UUID: ...)`` line each (MIG devices indented below).
NVIDIA_SMI_LIST = "nvidia-smi -L"
#: ``pull``: ``missing`` for an image pinned by digest, ``never`` for any other (rigforge pulls
#: only what is pinned); ``devices``: ``--gpus all`` or ``--device nvidia.com/gpu=all`` (CDI).
DOCKER_GPU_RUN = "docker run --rm --pull {pull} {devices} {image} nvidia-smi -L"
#: The directories Docker reads CDI specifications from; an empty list (or an error, before
#: Docker 27) means Docker injects no CDI device (Engine API SystemInfo.CDISpecDirs).
DOCKER_CDI_SPEC_DIRS = "docker info --format '{{json .CDISpecDirs}}'"
#: Run by each conda environment's python: whether torch imports, its build, is_available()
#: on a line of its own (parse_torch_cuda reads it) and a 64x64 matmul of ones on every device
#: (each element 64, the sum 64**3).
TORCH_WORKLOAD_SCRIPT = """\
try:
    import torch
except ImportError:
    print("rigforge-torch none")
    raise SystemExit(0)
print("rigforge-torch version", torch.__version__, "cuda", torch.version.cuda)
available = torch.cuda.is_available()
print(available)
for i in range(torch.cuda.device_count() if available else 0):
    try:
        a = torch.ones(64, 64, device=f"cuda:{i}")
        print("rigforge-torch device", i, "ok", int((a @ a).sum().item()), torch.cuda.get_device_name(i))
    except Exception as e:
        print("rigforge-torch device", i, "error", " ".join(str(e).split()))
"""
TORCH_WORKLOAD = "timeout 300 {python} -c {script}"
#: ``ollama`` commands run with OLLAMA_HOST set to where the server answers; ``ollama run``
#: with an empty prompt loads the model and returns (Ollama's FAQ), stdin closed so that it
#: does not wait for a prompt there.
OLLAMA_LIST = "ollama list"
OLLAMA_LOAD = "timeout 300 ollama run --keepalive={keepalive} {model} '' </dev/null"
#: A CUDA source that fills 32 ints on each device and prints their sum (992), compiled and
#: run in a fresh temporary directory by the toolkit's nvcc.
NVCC_KERNEL_SOURCE = (
    "#include <cstdio>",
    "__global__ void fill(int *out) { out[threadIdx.x] = 2 * threadIdx.x; }",
    "int main() {",
    "  int count = 0, failed = 0;",
    "  cudaError_t err = cudaGetDeviceCount(&count);",
    "  if (err != cudaSuccess) {",
    '    printf("rigforge-nvcc error -1 %s\\n", cudaGetErrorString(err));',
    "    return 1;",
    "  }",
    '  printf("rigforge-nvcc devices %d\\n", count);',
    "  for (int d = 0; d < count; ++d) {",
    "    int *buf = 0, host[32] = {0}, sum = 0;",
    "    err = cudaSetDevice(d);",
    "    if (err == cudaSuccess) err = cudaMalloc(&buf, sizeof(host));",
    "    if (err == cudaSuccess) { fill<<<1, 32>>>(buf); err = cudaGetLastError(); }",
    "    if (err == cudaSuccess) err = cudaMemcpy(host, buf, sizeof(host), cudaMemcpyDeviceToHost);",
    "    if (buf) cudaFree(buf);",
    "    for (int i = 0; i < 32; ++i) sum += host[i];",
    "    if (err != cudaSuccess) {",
    '      printf("rigforge-nvcc error %d %s\\n", d, cudaGetErrorString(err));',
    "      failed = 1;",
    '    } else printf("rigforge-nvcc device %d sum %d\\n", d, sum);',
    "  }",
    "  return failed;",
    "}",
)
#: The script that writes NVCC_KERNEL_SOURCE, compiles it with ``@NVCC@`` (the toolkit's nvcc, by
#: its path) and runs it; a compile failure prints ``rigforge-nvcc compile failed`` and nvcc's own
#: output, and exits 2.
NVCC_KERNEL = (
    "d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; "
    "printf '%s\\n' " + " ".join(f"'{line}'" for line in NVCC_KERNEL_SOURCE) + ' > "$d/k.cu"; '
    'timeout 300 @NVCC@ -o "$d/k" "$d/k.cu" > "$d/log" 2>&1 '
    '|| { echo "rigforge-nvcc compile failed"; cat "$d/log"; exit 2; }; timeout 60 "$d/k"'
)

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
