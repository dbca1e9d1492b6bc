"""Live progress per host while a playbook runs, and the summary table at the end.

On a terminal: a live table (rich). Otherwise (CI logs, pipes): one line per task
that changed, failed, could not reach its host or is being retried after a transient
failure, so logs stay short and greppable.
Progress goes to stderr; results (tables, JSON) go to stdout.
"""

import sys

from provision.runner import HostResult, RunResult

_STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "unreachable": "bold red",
          "not reached": "magenta"}


class Progress:
    """A context manager whose :meth:`update` is the runner's ``on_update`` callback."""

    def __init__(self, title: str, hosts: list[str], stream=None):
        from rich.console import Console

        self.title = title
        self.hosts = hosts
        self.console = Console(file=stream or sys.stderr)
        self.live = None
        self._seen: dict[str, tuple[int, int, int]] = {}

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(RunResult()), console=self.console, transient=True)
            self.live.__enter__()
        else:
            self.console.print(f"{self.title}: {', '.join(self.hosts)}", highlight=False)
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, result: RunResult, host: str) -> None:
        if self.live is not None:
            self.live.update(self._table(result))
            return
        done_changes, done_messages, done_retries = self._seen.get(host, (0, 0, 0))
        changed = [t for t in result.changed_tasks if t.host == host]
        messages = result.hosts[host].messages
        retries = result.hosts[host].retry_notes
        for note in retries[done_retries:]:
            self._line(f"  {host}: {note}")
        for task in changed[done_changes:]:
            self._line(f"  {host}: changed  {task.task}")
        for message in messages[done_messages:]:
            self._line(f"  {host}: FAILED   {message}")
        self._seen[host] = (len(changed), len(messages), len(retries))

    def _line(self, text: str) -> None:
        # Verbatim and on one line, however long: messages carry brackets ("[Errno 111]")
        # that rich would take for markup, and a wrapped line no longer greps.
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _table(self, result: RunResult):
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, title_justify="left", expand=False)
        for column in ("host", "status", "changed", "failed", "retries", "current task"):
            table.add_column(column)
        for name in self.hosts:
            state = result.hosts.get(name, HostResult(name))
            changed = sum(1 for t in result.changed_tasks if t.host == name)
            status = "failing" if state.messages else "retrying" if state.retrying else "running"
            # The latest retry says which attempt is running and why the last one failed.
            task = state.retry_notes[-1] if state.retrying else state.current_task
            table.add_row(name, status, str(changed), str(len(state.messages)),
                          str(len(state.retry_notes)), Text(task))
        return table


def summary_table(result: RunResult, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("host", "result", "ok", "changed", "failed", "unreachable", "skipped",
                   "retries"):
        table.add_column(column, justify="right" if column not in ("host", "result") else "left")
    for host in result.hosts.values():
        style = _STYLE[host.status]
        table.add_row(
            host.name,
            f"[{style}]{host.status}[/]",
            str(host.ok),
            str(host.changed),
            str(host.failed),
            str(host.unreachable),
            str(host.skipped),
            str(len(host.retry_notes)),
        )
    return table
