"""Why ``docker run --gpus all`` failed: the known texts of Docker, the NVIDIA Container Toolkit
(nvidia-container-cli, its CDI mode) and NVML inside the container, each with its usual fix.

The texts are matched anywhere in the output, as each runtime wraps them in its own prefix
(``docker: Error response from daemon: ...``, ``OCI runtime create failed: ...``, a kubelet
event). Output with none of them is not a known failure: None.

>>> parse_container_gpu_failure("docker: ... unknown or invalid runtime name: nvidia.").cause
'runtime_not_registered'
"""

import re
from dataclasses import dataclass

from provision.gpu.parsing import output_lines


@dataclass(frozen=True)
class ContainerGpuFailure:
    """The cause's id, its usual fix, and what the text names (a runtime, CDI devices)."""

    cause: str
    fix: str
    detail: str | None = None


_CONFIGURE = "nvidia-ctk runtime configure --runtime=docker, then systemctl restart docker"
#: (cause, pattern, fix), first match wins. The fixes are the toolkit's documented steps
#: (NVIDIA Container Toolkit install guide; the NOTICE in NVIDIA/nvidia-docker#1730).
_CAUSES = (
    ("docker_not_running", re.compile(
        r"(?:Cannot connect to the Docker daemon at|failed to connect to the docker API at) "
        r"(?P<detail>[a-z]+://\S+?)(?=[.;]?(?:\s|$))"),
     "start Docker (systemctl enable --now docker) and check the user may use its socket"),
    ("driver_library_mismatch", re.compile(r"(?i)driver/library version mismatch"),
     "reboot: the loaded kernel module is older than the driver's libraries (updated without a reboot)"),
    ("gpu_requires_reset", re.compile(r"nvml error: (?P<detail>gpu requires reset)"),
     "reset the GPU (nvidia-smi -r with no process on it) or reboot; look for Xid errors in the kernel log"),
    ("nvml_unknown_error", re.compile(r"Failed to initialize NVML: Unknown Error"),
     "the container lost its GPU devices (systemctl daemon-reload with the systemd cgroup driver): "
     "restart it; to prevent it, nvidia-ctk system create-dev-char-symlinks --create-all, or use CDI"),
    ("no_gpu_runtime",
     re.compile(r'could not select device driver "(?P<detail>[^"]*)" with capabilities: \[\[gpu\]\]'),
     f"install nvidia-container-toolkit and register it with Docker: {_CONFIGURE}"),
    ("runtime_not_registered", re.compile(
        r"(?:unknown or invalid runtime name|Unknown runtime specified):? (?P<detail>[\w.-]+?)\.?$"),
     f"register the NVIDIA runtime with Docker: {_CONFIGURE}"),
    ("cdi_spec_missing",
     re.compile(r"unresolvable CDI devices (?P<detail>\S+(?:, \S+)*?)(?::\s*unknown)?\s*$"),
     "generate the CDI spec, again after each driver change: "
     "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"),
)


def parse_container_gpu_failure(output: str) -> ContainerGpuFailure | None:
    """The first known failure in ``docker run --gpus all`` output, or None."""
    lines = [line.strip() for line in output_lines(output)]
    for cause, pattern, fix in _CAUSES:
        for line in lines:
            match = pattern.search(line)
            if match:
                detail = match.groupdict().get("detail")
                return ContainerGpuFailure(cause, fix, detail.rstrip(",") if detail else None)
    return None
