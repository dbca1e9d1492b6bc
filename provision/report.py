"""The report at the end of ``rigforge provision``: per host, what it has now, what was
skipped and why, what needs the user, and the command to run next.

What a host "has" is what the run put there: the roles stop on anything else (the driver of
another branch, a CUDA that is not the pinned one, an Ollama that does not answer), so a host
whose run succeeded has the resolved values. A host whose run failed gets its errors instead.
"""

from provision.runner import HostResult
from provision.targets import Target


def host_report(target: Target, result: HostResult | None, check: bool = False,
                facts: dict | None = None) -> dict:
    """``facts``: what the run's probe read from the host (else its recorded rigforge_facts)."""
    from provision import components as comp

    selected = comp.host_components(target.vars, target.host.name)
    ok = result is not None and result.status in ("ok", "changed")
    report = {
        "host": target.host.name,
        "status": result.status if result else "not run",
        "has": _safe_has(target, selected, facts) if ok and not check else {},
        "skipped": list(result.skipped_notes) if result else [],
        "needs_you": list(result.warnings) if result else [],
        "errors": list(result.messages) if result and not ok else [],
    }
    report["next"] = _next(report, check)
    return report


def _safe_has(target: Target, selected: list[str], facts: dict | None) -> dict[str, str]:
    """The run is over and succeeded: a report that cannot be built must not turn it into a failure."""
    try:
        return _has(target, selected, facts)
    except Exception as exc:  # reported in the report, not hidden
        return {"report": f"cannot be built ({type(exc).__name__}: {exc}); the run itself succeeded"}


def _has(target: Target, selected: list[str], facts: dict | None = None) -> dict[str, str]:
    v = target.vars
    has: dict[str, str] = {}
    gpu = [c for c in ("nvidia_driver", "cuda", "cudnn") if c in selected]
    known = facts or target.vars.get("rigforge_facts")
    stack = _stack(target, selected, facts) if gpu and known else None
    if gpu and not known:  # "auto" depends on the OS, which nobody read: say so, claim nothing
        for name in gpu:
            has[name] = "as the role resolved it (the host was not probed: `rigforge probe` shows it)"
    if "base" in selected:
        has["base"] = "build tools, kernel headers, unattended-upgrades kept off the driver"
    if stack and "nvidia_driver" in selected:
        has["nvidia_driver"] = (f"branch {stack.nvidia_driver_branch}, {stack.nvidia_driver_flavor} "
                                f"modules, from {stack.nvidia_driver_source}, held")
    if stack and "cuda" in selected:
        has["cuda"] = f"CUDA {stack.cuda_version} ({stack.cuda_source})"
    if stack and "cudnn" in selected:
        has["cudnn"] = f"cuDNN {stack.cudnn_version} for CUDA {stack.cuda_version.split('.')[0]}"
    if "docker" in selected:
        runtime = ", nvidia runtime in daemon.json" if "nvidia_container_toolkit" in selected else ""
        has["docker"] = f"Docker from {v.get('docker_source', 'docker-ce')}{runtime}"
    if "nvidia_container_toolkit" in selected:
        version = v.get("nvidia_container_toolkit_version")
        has["nvidia_container_toolkit"] = f"NVIDIA container toolkit {version}, held"
    if "conda" in selected:
        has["conda"] = f"Miniforge {v.get('conda_version')} in {v.get('conda_prefix', '/opt/conda')}"
    if "ollama" in selected:
        models = v.get("ollama_models") or []
        has["ollama"] = (f"Ollama {v.get('ollama_version')} on {v.get('ollama_host', '127.0.0.1:11434')}"
                         + (f", models: {', '.join(map(str, models))}" if models else ", no models pulled"))
    return has


def _stack(target: Target, selected: list[str], facts: dict | None):
    from provision.facts import host_facts
    from provision.gpu import stack

    record = facts or target.vars.get("rigforge_facts")
    return stack.resolve(target.vars, host_facts(record), selected).stack


def _next(report: dict, check: bool) -> str:
    if report["status"] in ("failed", "unreachable", "not reached", "not run"):
        return "fix what the errors name, then `rigforge provision --retry-failed`"
    if check:
        return "`rigforge provision` applies this plan"
    if any("reboot" in w.lower() for w in report["needs_you"]):
        return "reboot as the warning says, then `rigforge verify`"
    if any("mok" in w.lower() or "enroll" in w.lower() for w in report["needs_you"]):
        return "enroll the key at the console as the warning says, then `rigforge provision` again"
    return f"`rigforge verify --limit {report['host']}`"


def lines(report: dict) -> list[str]:
    """The report as text, a few lines per host."""
    out = [f"{report['host']}: {report['status']}"]
    out += [f"  has {name}: {what}" for name, what in report["has"].items()]
    out += [f"  skipped: {note}" for note in report["skipped"]]
    out += [f"  needs you: {note}" for note in report["needs_you"]]
    out += [f"  error: {note}" for note in report["errors"]]
    out.append(f"  next: {report['next']}")
    return out
