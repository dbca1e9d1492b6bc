from provision import cli
from provision.cli_help import HELP, OPTION_HELP


def _commands(group, prefix=""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_command_and_option_has_help_and_every_text_is_used():
    used = set()
    for name, command in [("rigforge", cli.main), *_commands(cli.main)]:
        assert command.help, name
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                if isinstance(param, cli.ComponentsOption):  # its help is written when shown
                    continue
                assert param.help or param.name == "port", f"{name} {param.name}"
                used.add(param.help)
    texts = set(OPTION_HELP.values()) - {OPTION_HELP["components"]}  # formatted when shown
    assert texts - used == set()
    assert len(HELP) >= len(list(_commands(cli.main)))
