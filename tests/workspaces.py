"""Shared by the unit and integration tests: workspaces set up as a user would."""

from pathlib import Path


def select_base_only(root: Path) -> None:
    """Make the workspace's hosts select base, as a user who lists components does. Most
    tests exercise one component; ``rigforge_components: auto`` (the default, whose CPU stack
    downloads Miniforge and Ollama) is tested on its own."""
    path = Path(root) / "inventory" / "group_vars" / "all.yml"
    text = path.read_text()
    assert "\nrigforge_components: auto\n" in text, "rigforge init writes auto"
    path.write_text(text.replace("\nrigforge_components: auto\n", "\nrigforge_components: [base]\n"))
