"""What every rule reads and writes: the stack, the host, its components, problems and notes."""

from provision.gpu.lifecycle import advised_branch
from provision.gpu.lookup import cuda_repo, known_gpus, os_key, os_name, os_row, supported
from provision.gpu.model import HostFacts, Problem, Stack
from provision.gpu.pci_bus import GpuDevice


class Checker:
    """One stack on one host, with the problems and notes its rules found so far."""

    def __init__(self, stack: Stack, facts: HostFacts, components: set[str]):
        self.stack = stack
        self.facts = facts
        self.components = components
        self.key = os_key(facts)
        self.os_name = os_name(self.key)
        self.gpus = known_gpus(facts)
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def problem(self, message: str, *variables: str) -> None:
        self.problems.append(Problem(message, variables))

    def gpus_of(self, archs: tuple[str, ...] | list[str]) -> list[tuple[GpuDevice, str]]:
        return [(gpu, arch) for gpu, arch in self.gpus if arch in archs]

    def branch(self) -> tuple[int, str] | None:
        """The driver the stack will run with: (branch, how to name it in messages)."""
        if "nvidia_driver" in self.components:
            branch = self.stack.nvidia_driver_branch
            return int(branch), f"nvidia_driver_branch is {branch}"
        if self.facts.driver_loaded:
            major = int(self.facts.driver_loaded.split(".")[0])
            return major, f"the loaded driver is {self.facts.driver_loaded} (nvidia_driver is not selected)"
        return None

    def use_branch(self, branch: int | str) -> str:
        """How to get a branch (or the first supported one above it), given the driver source."""
        branch = advised_branch(int(branch))
        if self.stack.nvidia_driver_source == "debian" and "nvidia_driver" in self.components:
            return f"Use nvidia_driver_source: cuda-repo with nvidia_driver_branch: {branch}"
        return f"Use {branch}"

    def repo_problem(self, variable: str, what: str) -> None:
        """A problem when NVIDIA's CUDA repo, which ``variable`` chose, has no build for the host."""
        if not self.facts.probed or not supported(self.key):
            return  # an unprobed host has no facts to check; an unsupported OS is one problem already
        if cuda_repo(self.facts.os_id, self.facts.os_version, self.facts.arch) is not None:
            return
        repo = (os_row(self.key) or {}).get("cuda_repo")
        if not repo:
            self.problem(
                f"NVIDIA's CUDA repo has no build for {self.os_name}; {variable} is cuda-repo.", variable
            )
        else:
            self.problem(
                f"NVIDIA's CUDA repo has no {repo} build for {self.facts.arch}; {variable} is cuda-repo, so "
                f"{what} cannot be installed on this host.",
                variable,
            )
