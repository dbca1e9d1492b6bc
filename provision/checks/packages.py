"""Which of many packages are installed, in one command (a helper, not a test module).

testinfra's ``host.package(name).is_installed`` is one command per package, and the base
checks alone ask about a dozen: a dpkg-query process each on the host, and a round trip each
when nothing is prefetched. This asks dpkg once and applies testinfra's own test to each.
"""


def versions(host, *patterns: str) -> dict[str, str]:
    """``{package: version}`` of the installed packages matching dpkg-query ``patterns``
    (names or globs): wanted ``install`` or ``hold``, status ``ok installed`` (testinfra's
    test), so a held package counts and one marked for removal or half-installed does not."""
    if not patterns:
        return {}
    out = host.run("dpkg-query -f %s -W" + " %s" * len(patterns), "${Package} ${Status} ${Version}\\n",
                   *patterns)
    found = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] in ("install", "hold") and parts[2:4] == ["ok", "installed"]:
            found[parts[0]] = parts[4] if len(parts) > 4 else ""
    return found


def installed(host, names: list[str]) -> set[str]:
    """The ``names`` dpkg has installed (see :func:`versions`). An arch-qualified name
    (``foo:amd64``) is looked up by its package name."""
    found = versions(host, *names)
    return {n for n in names if n.split(":", 1)[0] in found}
