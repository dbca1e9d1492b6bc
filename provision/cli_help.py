"""The help of every ``rigforge`` command (``--help`` is what teaches the tool), kept apart
from the Click wiring in ``provision/cli.py`` so that the wiring stays short. A line holding
only a backspace character (written as a backslash and a b) keeps Click from rewrapping the
paragraph after it."""


EXIT_CODES = """\b
Exit codes:
  0  success
  1  a host failed or was unreachable, or a check failed
  2  bad input or usage (nothing was changed)"""

#: The command groups, in the order `rigforge --help` lists their commands under.
GROUPS = ("host", "stack", "pins", "sandbox")

HELP: dict[str, str] = {
    'main': """Turn freshly installed Ubuntu/Debian boxes into working AI rigs.

rigforge writes a plain Ansible project (a workspace), runs it over SSH,
and verifies every host with testinfra checks afterwards.

\b
Quick start with a throwaway local test host (as root):
  rigforge init demo && cd demo
  rigforge sandbox up rig1
  rigforge provision --yes
  rigforge verify""",
    'init': """Create a workspace in DIRECTORY (default: --workspace).

\b
Writes ansible.cfg (host-key checking on, ./known_hosts), site.yml,
playbooks/ and roles/ (copies, so ansible-playbook needs no rigforge),
inventory/hosts.yml, inventory/group_vars/{all,sandbox}.yml and .gitignore.

An existing workspace is refused unless --force is given; --force rewrites
the generated files and keeps your inventory, vars and known_hosts.

With --ci github it also writes .github/workflows/rigforge.yml: on each push
and pull request, GitHub's ubuntu-latest runners install Podman and rigforge
and run `rigforge ci --backend podman` once per image (Ubuntu 22.04, 24.04,
26.04, Debian 12, 13), keeping each JUnit report. rigforge is on no package
index, so the workspace carries the one CI installs (--rigforge-source):

\b
  wheel           (default) a wheel of this rigforge, written to
                  ci/rigforge-VERSION-py3-none-any.whl; commit it
  git+URL@COMMIT  that commit of a rigforge repository, in full (40 hex
                  digits: a branch or a tag can move)

ci/rigforge-source records the choice; `init --force --ci github` keeps it
and rebuilds the wheel.""",
    'host': 'Add, list and remove the rigs in the inventory.',
    'host_add': """Add host NAME and record its SSH host key in the workspace's known_hosts.

The key is fetched over SSH and its fingerprint shown. Without
--accept-host-key you are asked to confirm it; with no terminal to ask,
the command fails. Host-key checking is never turned off.""",
    'host_list': 'List the hosts in the inventory.',
    'host_remove': 'Remove host NAME from the inventory and its key from known_hosts.',
    'probe': """Read each host's OS, GPUs, driver and Secure Boot state; recommend a stack.

\b
Read-only on the host (one SSH session each, host keys checked). The facts are
recorded as the host's `rigforge_facts` variable in inventory/hosts.yml (your
comments and other variables stay as they are); plan and provision use them to
check your stack choices before any host is changed. Default: every host.""",
    '_report_converged': 'Every chosen host is converged: say so, per host, without having run Ansible.',
    '_print_kept_warnings': """Warnings an earlier run reported and this one did not repeat (it skipped their
components): the host is converged, not cleared of them.""",
    'plan': 'Show what provision would change (Ansible check mode with diff). Changes nothing.',
    'provision': """Apply the stack to the hosts over SSH, with live progress and a summary per host.

\b
Re-runs are fast: rigforge first reads each host's state in one SSH session and runs
Ansible only for the hosts and components that drifted from the last converged run, or
whose roles or variables changed (--full runs everything; so do --check-idempotence
and --retry-failed).

Hosts are reached as their ansible_user and become root with sudo. One failing or
unreachable host does not stop the others; the exit code is then 1, and
--retry-failed re-runs just those hosts. The become password comes from
--ask-become-pass or a vaulted variable (--vault-password-file); it is never written
to the workspace, ansible-runner's env/ or artifacts, or logs.""",
    'update_drivers':
        """Move the NVIDIA driver to a new branch (or update it), rolling, --serial hosts at a time.

\b
The new branch is checked against each host's GPUs, CUDA and Ollama first. Then, per host:
record the current driver, stop GPU consumers (ollama, GPU containers), unhold, switch
packages, hold again, rebuild DKMS for the running and any newer kernel, reboot if
something changed, assert that the loaded module equals the package, restart the
consumers, run the GPU checks. A failure rolls that host back to the recorded driver and
stops the rollout; hosts not yet reached are untouched.""",
    'verify': """Run the testinfra checks for the components each host has.

\b
Three tiers (--tier install,health,workload; default: all):
  install   what the roles put there is there (packages, files, services)
  health    the GPU is well: no Xid event since boot, a full-width PCIe
            link, no uncorrectable ECC error or pending memory repair,
            persistence mode and power limits as configured
  workload  the rig computes: a container, PyTorch, Ollama and nvcc on
            the GPU
Without a GPU, every health and workload check is skipped with the
reason; a skip is never a pass.

\b
Every verify asks each host again: the commands the checks ran last
time go in one round trip per host. When a host's answers, the check
code, its variables and the components are all exactly those of its
last verify, pytest would compute the same results, so they are
reused (and said so); --full evaluates them anyway.

\b
The same checks run under plain pytest, from the workspace:
  pytest --pyargs provision.checks --ssh-config=.rigforge/ssh_config \\
         --hosts='ssh://rig1?sudo=true'""",
    'doctor': """Check HOST (default: every host) and say what to do about each problem.

\b
Runs verify's checks (every tier) and prints, for each failure, the
diagnosis and the command or step that fixes it: a reboot after the
driver's libraries changed, `rigforge update-drivers`, re-running the
container toolkit's runtime configuration, enrolling the module-signing
key (MOK), reseating a card whose PCIe link runs narrow, ... doctor
changes nothing: it prints the fixes, and you run them.
--json for scripts. Exit 1 when a check failed.""",
    'ci': """Prove in CI that this workspace's stack provisions cleanly on a throwaway host.

\b
1. boot a sandbox host (group `sandbox`: group_vars/all.yml + the sandbox profile)
2. provision the stack onto it
3. provision again: any task that reports changed fails the idempotence step
4. verify (checks that need a GPU are skipped, with the reason)
5. tear the host down (unless --keep)

Your inventory, known_hosts and host_vars are not used or touched: the run
works on a copy of the workspace in .rigforge/ci/. Needs root and the sandbox
tools (see `rigforge sandbox --help`).""",
    'stack': 'Look at a GPU stack before a rig exists: the facts table and the resolver, no host.',
    'stack_show': """Print what provision would install for an OS and its GPUs.

\b
Per component: source, branch, flavor, the exact packages, holds and the
unattended-upgrades blacklist, with every warning, from the same facts table
and resolver that plan and provision use. A stack that cannot work exits 2.
Example:
  rigforge stack show --os ubuntu-24.04 --gpu 10de:2684
  rigforge stack show --os debian-12 --gpu 10de:1b80 --set nvidia_driver_source=cuda-repo""",
    'pins': "Checksums of the downloads rigforge installs (Ollama, Miniforge) and NVIDIA's toolkit key.",
    'pins_update': """Fetch the vendors' own checksums and pin them in inventory/group_vars/all.yml.

\b
Per component (ollama, conda, nvidia_container_toolkit; default all),
for every architecture: the release's checksum file over HTTPS, from
where the workspace downloads it (ollama_url, conda_installer_url: a
mirror works too), checked against GitHub's own digest of the asset
for a GitHub release and against the pins shipped with rigforge.
NVIDIA's key is fetched and must have the pinned fingerprint (gpg
--show-keys); its file's SHA-256 is then pinned too.
Old and new values are shown with their URLs and written, comments
kept, only after you confirm (--yes). Two sources that disagree, an
HTTP error or a version below the CVE floor write nothing (exit 2).
  rigforge pins update ollama --version 0.33.3""",
    'sandbox': """Throwaway local test hosts: Debian 12, systemd, SSH (needs root).

Each is a systemd-nspawn container in its own network namespace that can
reach only the Debian mirror. The root filesystem is built once and cached.""",
    'sandbox_up': 'Boot sandbox host NAME and add it to the inventory (group `sandbox`).',
    'sandbox_down': 'Destroy sandbox host NAME and remove it from the inventory.',
    'sandbox_halt': 'Power sandbox host NAME off, keeping its disk (boot it again with `sandbox boot`).',
    'sandbox_boot': 'Boot a halted sandbox host NAME again, with the disk (and Debian release) it had.',
    'sandbox_list': 'List the sandbox hosts on this machine.',
}

#: The help of each option, by the option's name (the same text wherever it is shared).
OPTION_HELP: dict[str, str] = {
    "workspace": "The workspace to use (env RIGFORGE_WORKSPACE).",
    "verbose": "More output: Ansible's own, at the same verbosity (-v to -vvvv).",
    "components": "Only these components (comma-separated): {}. Default: each host's rigforge_components.",
    "limit": "Only these hosts or groups (comma-separated names or shell patterns).",
    "yes": "Do not ask for confirmation.",
    "json": "Print the result as JSON.",
    "vault_password_file": "Decrypt ansible-vault files (e.g. a vaulted ansible_become_password).",
    "ask_pass": "Prompt for the sudo password.",
    "force": "Refresh generated files in an existing workspace.",
    "init_ci": "Also write a CI workflow that runs `rigforge ci` (GitHub Actions).",
    "rigforge_source": "With --ci: where the workflow installs rigforge from: `wheel` or "
    "`git+URL@COMMIT` (default: the recorded one, else wheel).",
    "address": "IP address or DNS name.",
    "user": "SSH user (an ordinary user with sudo is fine).",
    "key": "Private key file for SSH.",
    "group": "Add to this group (repeatable).",
    "accept_host_key": "Trust the host key the host presents now (its fingerprint is printed).",
    "no_record": "Do not write the facts into host_vars.",
    "check_idempotence": "Run twice; fail, listing each task, if the second run changed anything.",
    "retry_failed": "Only the hosts that failed or were unreachable in the last provision.",
    "provision_full": "Run Ansible for every chosen host and component, even where the converged "
                      "check finds nothing to do.",
    "branch": 'The driver branch to move to, e.g. "575" (default: the configured one).',
    "serial": "Hosts updated at a time; a failed host stops the rollout.",
    "format": "The report's format: a table, JSON, or JUnit XML for CI systems.",
    "output": "Write the report here instead of stdout.",
    "tier": "Only the checks of these tiers (comma-separated): install, health, workload. Default: all.",
    "verify_full": "Evaluate every check, even for a host whose answers are byte-identical to those "
                   "its last results were computed from.",
    "verify_json": "The same as --format json (as for every command).",
    "junit": "Write a JUnit XML report (the steps, then every check) here.",
    "keep": "Keep the sandbox host (and its workspace copy).",
    "backend": "What runs the throwaway host: nspawn (systemd-nspawn on a cached Debian root), "
    "podman or docker (a systemd container). Default: $RIGFORGE_SANDBOX_BACKEND, else the first "
    "installed of nspawn, podman, docker (the output says which).",
    "image": "podman/docker only: the image the host is made from (any image with systemd and "
    "sshd, or with apt to add them in a build step, e.g. ubuntu:24.04). Default: rigforge's own "
    "Debian image, imported from the cached root filesystem (no registry needed).",
    "os": "ubuntu-22.04, ubuntu-24.04, ubuntu-26.04, debian-12 or debian-13.",
    "gpu": "An NVIDIA PCI ID (10de:2684); repeat.",
    "set": "A stack variable (nvidia_driver_branch=590, cuda_version=12.9, ...); repeat.",
    "kernel": "Kernel release in module and header names.",
    "stack_components": "The components whose rules apply (comma-separated).",
    "pins_version": "The release to pin (default: the workspace's ollama_version / conda_version).",
    "pins_yes": "Write without asking.",
    "release": "Debian release: bookworm (12) or trixie (13).",
}
