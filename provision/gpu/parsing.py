"""What every parser of a host's output shares: the error it raises and how it reads lines.

Each ``parse_*(text)`` of :mod:`provision.gpu.pci_bus`, :mod:`~provision.gpu.nvidia_smi`,
:mod:`~provision.gpu.mokutil`, :mod:`~provision.gpu.kernel_module`,
:mod:`~provision.gpu.cuda_versions` and :mod:`~provision.gpu.system`, and of the health checks'
:mod:`~provision.gpu.xid`, :mod:`~provision.gpu.ollama_ps`, :mod:`~provision.gpu.nvidia_smi_health`,
:mod:`~provision.gpu.container_errors` and :mod:`~provision.gpu.torch_cuda`, takes a command's output
(:mod:`provision.gpu.commands` names the commands) and returns a dataclass (or a list of
them); none runs anything. Output that is not what the parser expects raises ParseError,
except where "nothing found" is a legitimate answer (``lspci`` with no NVIDIA function gives
[]). The shapes they accept are the ones recorded from real hosts under
``tests/unit/data/gpu/<parser>/``.
"""

import re


class ParseError(ValueError):
    """The text is not the output the parser expects."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def output_lines(text: str) -> list[str]:
    """The output's lines, without color codes and carriage returns (pasted and colored output)."""
    return _ANSI.sub("", text or "").replace("\r\n", "\n").split("\n")
