"""What each ``rigforge`` verb does, between the CLI's parsing and its printing.

Each verb is one function here that takes plain values (and, where the user must be asked
something, an :class:`~provision.commands.interaction.Interaction`) and returns a result
object; ``provision/cli.py`` only parses, prompts and prints.
"""
