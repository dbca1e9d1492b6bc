"""The nvidia_driver component's rules: a driver source the host's OS has, then its GPUs' and
Secure Boot's."""

from provision.gpu import table
from provision.gpu.lifecycle import eol_warnings
from provision.gpu.lookup import os_row
from provision.gpu.rules.context import Checker
from provision.gpu.rules.generations import check_generations
from provision.gpu.rules.secure_boot import check_secure_boot


def check_debian_source(checker: Checker) -> None:
    """Debian's own driver: on Debian only, at the branch and flavors its archive has."""
    stack, key = checker.stack, checker.key
    if key is not None and key[0] != "debian":
        checker.problem(
            f"nvidia_driver_source debian is Debian's own driver and this host runs {checker.os_name}. "
            "Use nvidia_driver_source: ubuntu or cuda-repo.",
            "nvidia_driver_source",
        )
    row = os_row(key) if key and key[0] == "debian" else table.table().os_row("debian-12")
    debian_branch = str((row or {}).get("distro_driver_branch", ""))
    if row and stack.nvidia_driver_branch != debian_branch:
        checker.problem(
            f"{row['name']} ships driver branch {debian_branch} only; nvidia_driver_branch is "
            f"{stack.nvidia_driver_branch}. Use nvidia_driver_branch: {debian_branch}, or "
            f"nvidia_driver_source: cuda-repo for {stack.nvidia_driver_branch}.",
            "nvidia_driver_source",
            "nvidia_driver_branch",
        )
    flavors = (row or {}).get("distro_driver_flavors", []) if key and key[0] == "debian" else []
    if row and flavors and stack.nvidia_driver_flavor not in flavors:
        checker.problem(
            f"{row['name']}'s own driver packages carry the {' and '.join(flavors)} kernel modules "
            f"only; nvidia_driver_flavor is {stack.nvidia_driver_flavor}. Use nvidia_driver_flavor: "
            f"{flavors[0]}, or nvidia_driver_source: cuda-repo for the {stack.nvidia_driver_flavor} "
            "modules.",
            "nvidia_driver_flavor",
        )


def check_driver(checker: Checker) -> None:
    """The driver source on this OS, then the GPUs' and Secure Boot's rules, then notes."""
    stack, key = checker.stack, checker.key
    source, branch = stack.nvidia_driver_source, int(stack.nvidia_driver_branch)
    if source == "debian":
        check_debian_source(checker)
    elif source == "ubuntu" and key is not None and key[0] != "ubuntu":
        checker.problem(
            "nvidia_driver_source ubuntu installs Ubuntu's packaged driver and this host runs "
            f"{checker.os_name}. Use nvidia_driver_source: cuda-repo"
            + (f" or debian (branch {(os_row(key) or {}).get('distro_driver_branch', '')})."
               if key[0] == "debian" and os_row(key) else "."),
            "nvidia_driver_source",
        )
    elif source == "cuda-repo":
        checker.repo_problem("nvidia_driver_source", "the driver")
    check_generations(checker, branch)
    check_secure_boot(checker)
    checker.notes.extend(eol_warnings(stack.nvidia_driver_branch, checker.facts.driver_loaded))
    loaded = checker.facts.driver_loaded
    if loaded and loaded.split(".")[0] != stack.nvidia_driver_branch:
        checker.notes.append(
            f"The loaded driver is {loaded}; provisioning installs branch {stack.nvidia_driver_branch} "
            "and reboots the host to load it."
        )
