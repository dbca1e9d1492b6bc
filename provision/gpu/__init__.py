"""GPU knowledge without side effects: PCI IDs, output parsers and the stack resolver.

Nothing here runs a command or imports click, ansible, paramiko or fabric; the probe and
the CLI call these pure functions with what they collected.
"""

from provision.gpu.parsers import (
    NVIDIA_SMI_QUERY,
    GpuDevice,
    ParseError,
    classify_nvidia_smi_failure,
    parse_lspci,
)
from provision.gpu.pci import ARCHITECTURES, architecture, compute_capability
from provision.gpu.stack import (
    OS_DEFAULTS,
    HostFacts,
    Problem,
    Resolution,
    Stack,
    cudnn_package,
    defaults,
    recommend,
    resolve,
)

__all__ = [
    "ARCHITECTURES",
    "NVIDIA_SMI_QUERY",
    "OS_DEFAULTS",
    "GpuDevice",
    "HostFacts",
    "ParseError",
    "Problem",
    "Resolution",
    "Stack",
    "architecture",
    "classify_nvidia_smi_failure",
    "compute_capability",
    "cudnn_package",
    "defaults",
    "parse_lspci",
    "recommend",
    "resolve",
]
