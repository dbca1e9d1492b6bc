"""Plain ansible-playbook runs of the workspace's playbooks on one sandbox host, as a user of
the generated project would make them (no rigforge, no ANSIBLE_* or RIGFORGE_* from the test
environment), with the components and variables of the test as extra vars."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import Rig

Play = Callable[..., tuple[subprocess.CompletedProcess, int | None]]


def player(rig: Rig, components: list[str], name: str, timeout: int = 1800) -> Play:
    """``play(*args, playbook="nvidia_driver.yml", **variables) -> (process, changed)``;
    ``changed`` is the host's count in the play recap (None when there is no recap)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RIGFORGE_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    extra = rig.workspace / ".rigforge" / f"{name}_test_vars_{rig.name}.json"

    def play(*args: str, playbook: str = "nvidia_driver.yml", **variables):
        extra.write_text(json.dumps({"rigforge_components": components, **variables}))
        proc = subprocess.run(
            ["ansible-playbook", f"playbooks/{playbook}", "--limit", rig.name, "-e", f"@{extra}", *args],
            cwd=rig.workspace, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        recap = re.search(rf"^{re.escape(rig.name)}\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M)
        return proc, int(recap.group(1)) if recap else None

    return play


def ok(proc: subprocess.CompletedProcess) -> str:
    """The run's output on one line, after asserting that it succeeded."""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return " ".join(proc.stdout.split())
