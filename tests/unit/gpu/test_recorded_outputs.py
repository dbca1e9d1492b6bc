"""Every parser against outputs recorded on real hosts (tests/unit/data/gpu/<parser>/<case>.*).

One generic test walks the folders: ``<case>.txt`` is the raw output, ``<case>.source`` says
where it was recorded, ``<case>.json`` holds ``expected`` (the result as plain JSON) or
``raises`` (an exception name from provision.gpu.parsing), plus optional ``kwargs``. Each
folder's ``command`` file is the command rigforge runs for that parser
(provision.gpu.commands.FACT_COMMANDS).
"""

import dataclasses
import json
from pathlib import Path

import pytest

from provision.gpu import (
    commands,
    container_errors,
    cuda_versions,
    kernel_module,
    mokutil,
    nvidia_smi,
    nvidia_smi_health,
    ollama_ps,
    parsing,
    pci_bus,
    system,
    torch_cuda,
    xid,
)

DATA = Path(__file__).parents[1] / "data" / "gpu"
CASES = sorted(DATA.glob("*/*.txt"))
FOLDERS = sorted(p for p in DATA.iterdir() if p.is_dir())
#: ``parse_<name>`` -> the parser, from every module of parsers.
PARSERS = {
    name.removeprefix("parse_"): value
    for module in (pci_bus, nvidia_smi, mokutil, kernel_module, cuda_versions, system,
                   xid, ollama_ps, nvidia_smi_health, container_errors, torch_cuda)
    for name, value in vars(module).items()
    if name.startswith("parse_") and callable(value)
}


def plain(value):
    """Dataclasses become dicts (properties included), tuples become lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name, attr in vars(type(value)).items():
            if isinstance(attr, property):
                out[name] = plain(getattr(value, name))
        return out
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_recorded_output(path):
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert path.with_suffix(".source").read_text(encoding="utf-8").strip(), "say where it was recorded"
    parse = PARSERS[path.parent.name]
    text = path.read_text(encoding="utf-8")
    if "raises" in spec:
        with pytest.raises(getattr(parsing, spec["raises"])):
            parse(text, **spec.get("kwargs", {}))
    else:
        assert plain(parse(text, **spec.get("kwargs", {}))) == spec["expected"]


def test_every_case_is_complete():
    assert len(CASES) >= 50
    for folder in FOLDERS:
        assert callable(PARSERS.get(folder.name)), folder.name
    for stray in DATA.glob("*/*.*"):
        if stray.suffix in (".json", ".source"):
            assert stray.with_suffix(".txt").exists(), f"{stray} has no .txt"
    for path in CASES:
        assert path.with_suffix(".json").exists() and path.with_suffix(".source").exists(), path


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_each_folder_names_the_command_rigforge_runs_for_its_parser(folder):
    command = folder / "command"
    if folder.name not in commands.FACT_COMMANDS:
        assert not command.exists(), f"{command}: {folder.name} is not in FACT_COMMANDS"
        return
    assert command.read_text(encoding="utf-8").splitlines() == [commands.FACT_COMMANDS[folder.name]]


@pytest.mark.parametrize("name", sorted(commands.FACT_COMMANDS))
def test_every_command_has_a_parser_and_recorded_outputs(name):
    assert callable(PARSERS.get(name)), f"FACT_COMMANDS names {name}, but there is no parse_{name}"
    assert (DATA / name / "command").is_file(), f"no tests/unit/data/gpu/{name}/command"
    assert list((DATA / name).glob("*.txt")), f"no recorded output in tests/unit/data/gpu/{name}"
