"""provision/gpu/parsing.py: what every parser shares."""

from provision.gpu.parsing import ParseError, output_lines


def test_parse_error_is_a_value_error():
    # The probe catches ValueError too: a parser's own error must be one.
    assert issubclass(ParseError, ValueError)


def test_output_lines_drop_colors_and_carriage_returns():
    assert output_lines("\x1b[32mSecureBoot enabled\x1b[0m\r\nnext\n") == ["SecureBoot enabled", "next", ""]
    assert output_lines("") == [""]
    assert output_lines(None) == [""]
