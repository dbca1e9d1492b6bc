"""The docker role's preflight decisions: its vars files, templated by Ansible's own Templar.

A case is a faked host: the role variables a user sets and the ``dpkg-query`` output that
preflight registers (``__docker_dpkg``). The files are layered as Ansible layers them
(defaults < inventory < vars/main.yml < the vars/<distribution>.yml that preflight includes),
and the refusal's message is templated from tasks/preflight.yml itself.
"""

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[2] / "roles" / "docker"
LOADER = DataLoader()

# Docker's install guide, "Uninstall old versions" (Ubuntu and Debian pages; checked 2026-12-03).
DOCKER_GUIDE_CONFLICTS = [
    "docker.io", "docker-compose", "docker-compose-v2", "docker-doc", "podman-docker", "containerd", "runc",
]
DOCKER_CE_PACKAGES = [
    "docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin",
]


def _load(relative: str):
    return LOADER.load_from_file(str(ROLE / relative), trusted_as_template=True) or {}


def _variables(distribution: str = "Debian", dpkg: tuple[str, ...] = (), **settings) -> dict:
    return {
        **_load("defaults/main.yml"),
        "inventory_hostname": "rig1", "role_path": str(ROLE), "ansible_check_mode": False,
        "ansible_facts": {"distribution": distribution, "os_family": "Debian"},
        "__docker_dpkg": {"stdout_lines": list(dpkg), "rc": 1},
        **settings,
        **_load("vars/main.yml"),
        **_load(f"vars/{distribution}.yml"),
    }


def _template(variables: dict, expression: str):
    return Templar(loader=LOADER, variables=variables).template(trust_as_template(expression))


def value(name: str, **case):
    return _template(_variables(**case), f"{{{{ {name} }}}}")


def _task(name: str) -> dict:
    return next(task for task in _load("tasks/preflight.yml") if task["name"] == name)


REFUSAL = "Fail because packages that conflict with the chosen source are installed."


def refusal(**case) -> str | None:
    """The refusal's message, or None when preflight lets the host through."""
    task = _task(REFUSAL)
    variables = _variables(**case)
    if not _template(variables, f"{{{{ {task['when']} }}}}"):
        return None
    return _template(variables, task["ansible.builtin.fail"]["msg"])


def installed(*names: str, status: str = "ii") -> tuple[str, ...]:
    """``dpkg-query --showformat='${db:Status-Abbrev} ${Package}\\n'`` lines (dpkg prints them by name)."""
    return tuple(f"{status}  {name}" for name in names)


@pytest.mark.parametrize("distribution", ["Debian", "Ubuntu"])
def test_docker_ce_conflicts_with_everything_dockers_guide_removes(distribution):
    assert sorted(value("__docker_conflicting_packages['docker-ce']", distribution=distribution)) == sorted(
        DOCKER_GUIDE_CONFLICTS)
    # The distro direction is unchanged: Docker's own packages conflict with docker.io.
    assert value("__docker_conflicting_packages['distro']", distribution=distribution) == DOCKER_CE_PACKAGES


def test_preflight_asks_dpkg_about_every_conflicting_package():
    task = _task("Read the dpkg state of the conflicting packages and python3-debian.")
    argv = _template(_variables(), task["ansible.builtin.command"]["argv"])
    assert argv[:3] == ["dpkg-query", "--show", "--showformat=${db:Status-Abbrev} ${Package}\\n"]
    assert sorted(argv[3:]) == sorted(["python3-debian", *DOCKER_GUIDE_CONFLICTS])


def test_runc_alone_is_refused_for_docker_ce():
    msg = refusal(dpkg=installed("python3-debian", "runc"))
    assert msg == (
        "runc is installed on rig1, but docker_source is 'docker-ce', whose packages conflict with it. "
        "Either set docker_source to 'distro', or remove it first "
        "(apt-get remove runc; images and volumes in /var/lib/docker stay)."
    )


def test_containerd_is_refused_for_docker_ce_and_held_counts_as_installed():
    msg = refusal(dpkg=installed("containerd", status="hi") + installed("python3-debian"))
    assert msg.startswith("containerd is installed on rig1, but docker_source is 'docker-ce'")
    assert "(apt-get remove containerd;" in msg


def test_podman_docker_is_refused_without_suggesting_docker_io_which_it_conflicts_with_too():
    msg = refusal(dpkg=installed("podman-docker"))
    assert msg == (
        "podman-docker is installed on rig1, but docker_source is 'docker-ce', "
        "whose packages conflict with it. Remove it first "
        "(apt-get remove podman-docker; images and volumes in /var/lib/docker stay)."
    )


def test_several_conflicts_are_named_together():
    msg = refusal(dpkg=installed("containerd", "docker.io", "python3-debian", "runc"))
    assert msg.startswith("containerd, docker.io, runc are installed on rig1")
    assert "conflict with them. Either set docker_source to 'distro', or remove them first" in msg
    assert "(apt-get remove containerd docker.io runc;" in msg


def test_nothing_installed_passes():
    assert value("__docker_conflicts_installed", dpkg=()) == []
    assert refusal(dpkg=()) is None


def test_packages_not_installed_or_only_with_config_left_pass():
    # "un": known but not installed; "rc": removed, configuration files left.
    dpkg = installed("runc", status="un") + installed("containerd", status="rc") + installed("python3-debian")
    assert refusal(dpkg=dpkg) is None
    assert value("__docker_python_debian_installed", dpkg=dpkg) is True


def test_distro_source_accepts_runc_and_containerd_and_refuses_docker_ce():
    # docker.io depends on the distribution's containerd and runc.
    assert refusal(docker_source="distro", dpkg=installed("docker.io", "containerd", "runc")) is None
    msg = refusal(docker_source="distro", dpkg=installed("docker-ce", "docker-ce-cli", "containerd.io"))
    assert msg == (
        "docker-ce, docker-ce-cli, containerd.io are installed on rig1, but docker_source is 'distro', whose "
        "packages conflict with them. Either set docker_source to 'docker-ce', or remove them first "
        "(apt-get remove docker-ce docker-ce-cli containerd.io; images and volumes in /var/lib/docker stay)."
    )
