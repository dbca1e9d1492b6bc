"""provision/gpu/rules/context.py: the driver a stack runs with, and how to advise a branch."""

from provision.gpu.model import HostFacts, Stack
from provision.gpu.rules.context import Checker
from tests.unit.gpu.resolver_cases import GTX_1080, RTX_3090

DEBIAN = Stack("debian", "535", "proprietary", "distro", "11.8", "cuda-repo", "9")


def test_the_branch_is_the_stacks_when_the_driver_is_selected_else_the_loaded_one():
    facts = HostFacts("debian", "12", "x86_64", (RTX_3090,), driver_loaded="550.54.14")
    assert Checker(DEBIAN, facts, {"nvidia_driver"}).branch() == (535, "nvidia_driver_branch is 535")
    assert Checker(DEBIAN, facts, {"cuda"}).branch() == (
        550, "the loaded driver is 550.54.14 (nvidia_driver is not selected)")
    assert Checker(DEBIAN, HostFacts("debian", "12"), {"cuda"}).branch() is None


def test_use_branch_leaves_debians_archive_for_a_branch_it_lacks():
    facts = HostFacts("debian", "12", "x86_64", (RTX_3090,))
    assert Checker(DEBIAN, facts, {"nvidia_driver"}).use_branch(570) == (
        "Use nvidia_driver_source: cuda-repo with nvidia_driver_branch: 580")
    assert Checker(DEBIAN, facts, {"cuda"}).use_branch(570) == "Use 580"


def test_gpus_of_and_problems():
    checker = Checker(DEBIAN, HostFacts("debian", "12", "x86_64", (RTX_3090, GTX_1080)), {"nvidia_driver"})
    assert [arch for _, arch in checker.gpus_of(["Pascal"])] == ["Pascal"]
    checker.problem("broken", "cuda_version")
    assert [(p.message, p.variables) for p in checker.problems] == [("broken", ("cuda_version",))]
