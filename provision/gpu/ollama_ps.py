"""What ``ollama ps`` prints: the loaded models and where they run (GPU, CPU or split).

The table is ``NAME  ID  SIZE  PROCESSOR  UNTIL``, with a ``CONTEXT`` column before UNTIL from
ollama 0.11. Columns are aligned with spaces; the first releases of the command (0.1.38)
separated them with tabs. PROCESSOR is ``100% GPU``, ``100% CPU`` or ``52%/48% CPU/GPU``: the
share of the model held in system memory and in VRAM, as ollama planned it (the runner may
still fall back to the CPU: ollama/ollama#10369).

>>> parse_ollama_ps("NAME  ID  SIZE  PROCESSOR  UNTIL\\n")
[]
"""

import re
from dataclasses import dataclass

from provision.gpu.parsing import ParseError, output_lines


@dataclass(frozen=True)
class OllamaModel:
    """One loaded model: SIZE and UNTIL as printed, PROCESSOR split into percentages."""

    name: str
    id: str
    size: str
    processor: str
    cpu_percent: int
    gpu_percent: int
    until: str
    context: int | None = None


_ONE = re.compile(r"^(?P<percent>\d+)% (?P<unit>GPU|CPU)$")
_SPLIT = re.compile(r"^(?P<cpu>\d+)%/(?P<gpu>\d+)% CPU/GPU$")


def _split(processor: str) -> tuple[int, int]:
    """``100% GPU`` -> (0, 100); ``52%/48% CPU/GPU`` -> (52, 48)."""
    one = _ONE.match(processor)
    if one:
        percent = int(one["percent"])
        return (percent, 100 - percent) if one["unit"] == "CPU" else (100 - percent, percent)
    split = _SPLIT.match(processor)
    if split:
        return int(split["cpu"]), int(split["gpu"])
    raise ParseError(f"unknown PROCESSOR in ollama ps: {processor!r}")


def _cells(line: str, header: str, starts: list[int]) -> list[str]:
    """A row's cells: split on tabs like its header, else cut at the header's column starts."""
    if "\t" in header:
        return [cell.strip() for cell in line.split("\t")]
    bounds = [*starts[1:], None]
    return [line[start:end].strip() for start, end in zip(starts, bounds, strict=True)]


def parse_ollama_ps(text: str) -> list[OllamaModel]:
    """The models ``ollama ps`` lists ([] when none is loaded).

    Lines before the header (a runtime's own log line) are skipped; output without the
    header (``Error: ...`` when the server is down) raises ParseError.
    """
    lines = output_lines(text)
    number = next((n for n, line in enumerate(lines)
                   if line.split()[:1] == ["NAME"] and "PROCESSOR" in line), None)
    if number is None:
        raise ParseError("no 'NAME ID SIZE PROCESSOR UNTIL' header in the ollama ps output")
    header = lines[number]
    names = [cell.strip() for cell in header.split("\t")] if "\t" in header else header.split()
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    models = []
    for line in lines[number + 1:]:
        if not line.strip():
            continue
        cell = dict(zip(names, _cells(line, header, starts), strict=False))
        cpu, gpu = _split(cell.get("PROCESSOR", ""))
        context = cell.get("CONTEXT", "")
        models.append(OllamaModel(
            name=cell["NAME"], id=cell.get("ID", ""), size=cell.get("SIZE", ""),
            processor=cell["PROCESSOR"], cpu_percent=cpu, gpu_percent=gpu,
            until=cell.get("UNTIL", ""), context=int(context) if context.isdigit() else None,
        ))
    return models
