"""provision/gpu/ollama_ps.py: ``ollama ps`` (recorded outputs: test_recorded_outputs.py)."""

import pytest

from provision.gpu.ollama_ps import parse_ollama_ps
from provision.gpu.parsing import ParseError


def test_no_model_loaded_is_an_empty_list():
    assert parse_ollama_ps("NAME    ID    SIZE    PROCESSOR    UNTIL\n") == []


def test_an_unknown_processor_column_raises():
    text = "NAME      ID    SIZE    PROCESSOR    UNTIL\nllama3    abc   1 GB    100% NPU     Forever\n"
    with pytest.raises(ParseError):
        parse_ollama_ps(text)
