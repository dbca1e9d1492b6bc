"""Which of many packages are installed, in one command (a helper, not a test module).

testinfra's ``host.package(name).is_installed`` is one command per package, and the base
checks alone ask about a dozen: a dpkg-query process each on the host, and a round trip each
when nothing is prefetched. This asks dpkg once and applies testinfra's own test to each.
"""


def installed(host, names: list[str]) -> set[str]:
    """The ``names`` dpkg has installed: wanted ``install`` or ``hold``, status ``ok
    installed`` (testinfra's test). An arch-qualified name (``foo:amd64``) is looked up
    by its package name."""
    if not names:
        return set()
    out = host.run("dpkg-query -f %s -W" + " %s" * len(names), "${Package} ${Status}\\n", *names)
    found = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] in ("install", "hold") and parts[2:] == ["ok", "installed"]:
            found.add(parts[0])
    return {n for n in names if n.split(":", 1)[0] in found}
