"""A rigforge workspace: an ordinary Ansible project directory.

Layout::

    ansible.cfg               tuned; host-key checking on, known_hosts inside the workspace
    site.yml                  imports one playbook per component
    playbooks/ roles/         copies of the shipped ones, so ansible-playbook needs no rigforge
    inventory/hosts.yml       your hosts (edit freely; comments survive rigforge's edits)
    inventory/group_vars/     stack choices (all.yml) and the sandbox profile (sandbox.yml)
    known_hosts               the SSH host keys rigforge recorded
    .rigforge/                local state: run artifacts, generated ssh_config (not for git)
    .github/workflows/, ci/   with --ci github: the workflow, and the rigforge it installs
                              (provision/ci_source.py)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provision import __version__, assets, components, fsutil, registry
from provision.errors import UsageError, WorkspaceError

if TYPE_CHECKING:  # only init needs it, and it loads importlib.metadata: every command opens a workspace
    from provision import ci_source

#: Files init generates from templates; --force regenerates these.
GENERATED = {
    "ansible.cfg": "ansible.cfg.j2",
    "site.yml": "site.yml.j2",
    ".gitignore": "gitignore.j2",
}
#: Files that hold the user's data; init writes them once and --force keeps them.
USER_FILES = {
    "inventory/hosts.yml": "hosts.yml.j2",
    "inventory/group_vars/all.yml": "group_vars_all.yml.j2",
    "inventory/group_vars/sandbox.yml": "group_vars_sandbox.yml.j2",
    "known_hosts": "known_hosts.j2",
}
SHIPPED_DIRS = ("roles", "playbooks")
#: CI systems `init --ci` can write a workflow for: name -> (path, template).
CI_WORKFLOWS = {"github": (".github/workflows/rigforge.yml", "github_workflow.yml.j2")}


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "hosts.yml"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def state_dir(self) -> Path:
        return self.root / ".rigforge"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def ansible_cfg(self) -> Path:
        return self.root / "ansible.cfg"


def is_workspace(path: Path) -> bool:
    return (path / "ansible.cfg").is_file() and (path / "inventory" / "hosts.yml").is_file()


def open_workspace(path: Path) -> Workspace:
    """The workspace at ``path``; a clear error when there is none."""
    path = path.resolve()
    if not is_workspace(path):
        raise WorkspaceError(
            f"no rigforge workspace at {path} (ansible.cfg and inventory/hosts.yml not found)",
            hint="run `rigforge init DIR` to create one, then cd into it or pass --workspace DIR",
        )
    return Workspace(path)


def _context() -> dict:
    from provision import vars_doc

    return {
        "version": __version__,
        "components": registry.names(),
        "default_components": components.DEFAULT_COMPONENTS,
        "auto_gpu": registry.gpu_stack(),
        "auto_no_gpu": registry.cpu_stack(),
        "documented_vars": vars_doc.render(assets.roles_dir()),
    }


def _write_playbooks(path: Path) -> list[str]:
    """One playbook per component, from the registry (the shipped playbooks/ holds the rest)."""
    from provision.render import render

    written = []
    for component in registry.REGISTRY:
        fsutil.write_text(path / component.playbook,
                          render("component_playbook.yml.j2", {"c": component}))
        written.append(component.playbook)
    return written


def _ci_source(path: Path, ci: str | None, rigforge_source: str | None) -> "ci_source.Source | None":
    """The source the CI workflow installs rigforge from (checked, a wheel built); writes nothing."""
    from provision import ci_source

    if ci is None:
        if rigforge_source is not None:
            raise UsageError("--rigforge-source is where the CI workflow installs rigforge from, "
                             "and no workflow is written without --ci",
                             hint="add --ci github, or leave --rigforge-source out")
        return None
    if ci not in CI_WORKFLOWS:
        raise WorkspaceError(f"unknown CI system {ci!r}", hint=f"choose one of: {', '.join(CI_WORKFLOWS)}")
    return ci_source.prepare(path, rigforge_source)


def init(path: Path, force: bool = False, ci: str | None = None,
         rigforge_source: str | None = None) -> tuple[Workspace, list[str]]:
    """Create a workspace at ``path``; returns it and the files written.

    Without ``force`` an existing workspace (or any file init would write) is refused.
    With ``force`` the generated files, roles and playbooks are refreshed and the user's
    inventory, vars and known_hosts are kept. With ``ci`` the CI workflow is written too,
    with the rigforge it installs (``rigforge_source``: see provision/ci_source.py).
    """
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} exists and is not a directory", hint="choose another DIR")
    installs = _ci_source(path, ci, rigforge_source)  # the rigforge the CI workflow installs
    generated = dict(GENERATED)
    if ci:
        workflow, template = CI_WORKFLOWS[ci]
        generated[workflow] = template
    clashes = [
        name
        for name in [*generated, *USER_FILES, *SHIPPED_DIRS, *(installs.files() if installs else [])]
        if (path / name).exists()
    ]
    if clashes and not force:
        raise WorkspaceError(
            f"{path} already holds {', '.join(sorted(clashes))}",
            hint="use another DIR, or pass --force to refresh the generated files "
            "(your inventory, vars and known_hosts are kept)",
        )
    from provision import ci_source
    from provision.render import render  # jinja2: only init needs it

    context = _context() | (ci_source.workflow_context(installs) if installs else {})
    written = []
    for name, template in generated.items():
        fsutil.write_text(path / name, render(template, context))
        written.append(name)
    for name, template in USER_FILES.items():
        if not (path / name).exists():
            mode = 0o600 if name == "known_hosts" else 0o644
            fsutil.write_text(path / name, render(template, context), mode=mode)
            written.append(name)
    for name in SHIPPED_DIRS:
        source = getattr(assets, f"{name}_dir")()
        fsutil.replace_tree(source, path / name)
        written.append(f"{name}/")
    written += _write_playbooks(path)
    if installs:
        written += ci_source.write(path, installs)
    (path / ".rigforge").mkdir(exist_ok=True)
    return Workspace(path), written
