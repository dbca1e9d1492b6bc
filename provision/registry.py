"""Every component rigforge knows, declared once; the rest of rigforge derives from here.

The stack order, ``auto``'s two stacks, the converged records' roles, the resolver's scope,
the CLI's help, the generated component playbooks and the documented variables of
``group_vars/all.yml`` all read this table. Adding a component is one entry here, its role
(``roles/<name>``, with ``meta/argument_specs.yml``) and its check module
(``provision/checks/test_<name>.py``): see the README's "Adding a component".

Pure data and small lookups: no imports beyond the standard library, so ``--help`` stays fast.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    #: The component's name, which is also its role's, its playbook's and its tag.
    name: str
    #: The play's name in ``playbooks/<name>.yml``.
    title: str
    #: Only for hosts with an NVIDIA GPU: ``auto`` leaves it out of a host without one.
    needs_gpu: bool = False
    #: The stack resolver has rules for its choices (plan and provision refuse a stack that
    #: cannot work, ``rigforge stack show`` explains it).
    resolver_rules: bool = False
    #: Its packages can pull in more libraries of the driver branch: the playbook holds them
    #: like the driver's own (role nvidia_driver, rehold.yml) when the host has the driver.
    rehold_driver: bool = False
    #: The play gathers facts afresh instead of from the fact cache: after a kernel update and
    #: reboot the cached kernel would be stale, and DKMS needs the headers of the running one.
    fresh_facts: bool = False

    @property
    def role(self) -> str:
        return self.name

    @property
    def check_module(self) -> str:
        """The testinfra module that verifies it (``provision/checks/test_<name>.py``)."""
        return f"test_{self.name}"

    @property
    def playbook(self) -> str:
        return f"playbooks/{self.name}.yml"


#: In stack order: the order they are applied in, and listed in.
REGISTRY: tuple[Component, ...] = (
    Component("base", "Base system."),
    Component("nvidia_driver", "NVIDIA driver.", needs_gpu=True, resolver_rules=True,
              fresh_facts=True),
    Component("cuda", "CUDA toolkit.", needs_gpu=True, resolver_rules=True, rehold_driver=True),
    Component("cudnn", "NVIDIA cuDNN.", needs_gpu=True, resolver_rules=True, rehold_driver=True),
    Component("docker", "Docker."),
    Component("nvidia_container_toolkit", "NVIDIA container toolkit.", needs_gpu=True),
    Component("conda", "Conda (Miniforge)."),
    Component("ollama", "Ollama.", resolver_rules=True),
)

#: Roles every component's play uses, beyond the ones its role reaches by itself: gpu_stack
#: chooses each host's components in every playbook's first task.
PLAY_ROLES: tuple[str, ...] = ("gpu_stack",)


def names() -> tuple[str, ...]:
    return tuple(c.name for c in REGISTRY)


def get(name: str) -> Component:
    for component in REGISTRY:
        if component.name == name:
            return component
    raise KeyError(name)


def gpu_stack() -> tuple[str, ...]:
    """``auto`` on a host with an NVIDIA GPU: everything."""
    return names()


def cpu_stack() -> tuple[str, ...]:
    """``auto`` on a host without one: what runs without a GPU (Ollama on the CPU)."""
    return tuple(c.name for c in REGISTRY if not c.needs_gpu)


def with_resolver_rules() -> tuple[str, ...]:
    return tuple(c.name for c in REGISTRY if c.resolver_rules)


def resolved() -> tuple[str, ...]:
    """The components whose presence makes plan and provision run the stack resolver."""
    return tuple(c.name for c in REGISTRY if c.needs_gpu or c.resolver_rules)


def gpu_packages() -> tuple[str, ...]:
    """The components whose packages come from the GPU facts table (they need the host's OS,
    GPUs and Secure Boot state)."""
    return tuple(c.name for c in REGISTRY if c.needs_gpu and c.resolver_rules)
