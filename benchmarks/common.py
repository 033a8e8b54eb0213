"""What several benchmark scripts share: the model mix of generated LLM calls, the shape of a
traced LLM call (an OpenTelemetry ``chat`` span), and the CPU time of the server, PostgreSQL and
the machine read from Linux's /proc. Imported by the scripts, never run."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("google", "gemini-2.5-flash"),
]

CHAT_ATTRIBUTES = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4.1-mini",
    "gen_ai.usage.input_tokens": 3000,
    "gen_ai.usage.output_tokens": 200,
}


def chat_span(tracer: Any) -> AbstractContextManager[Any]:
    """One traced LLM call (3,000 input and 200 output tokens of gpt-4.1-mini)."""
    return tracer.start_as_current_span("chat", attributes=CHAT_ATTRIBUTES)


# --- CPU: where the machine's time goes (Linux /proc) ----------------------------------------


def gunicorn_pid(port: int) -> int | None:
    """The gunicorn master bound to ``port`` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"gunicorn" in part for part in command[:2]) and (
                f"127.0.0.1:{port}".encode() in command
            ):
                return int(entry.name)
    return None


def cpu_sample(server_pid: int | None) -> dict[str, float | dict[int, float]]:
    """CPU seconds used so far by the gunicorn master and its workers, by each PostgreSQL
    process (other users' queries included), by this process, and by the whole machine (busy)."""
    tick = os.sysconf("SC_CLK_TCK")
    server, postgres = 0.0, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime and the children's that were waited for: a PostgreSQL backend or a
        # gunicorn worker that exits moves its time to its parent (postmaster, master).
        seconds = sum(int(n) for n in fields[11:15]) / tick
        if server_pid is not None and server_pid in (int(entry.name), int(fields[1])):
            server += seconds
        elif name == "postgres":  # the servers and their backends (not postgres_exporter)
            postgres[int(entry.name)] = seconds
    times = os.times()
    jiffies = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return {
        "server": server,
        "postgres": postgres,
        "client": times.user + times.system,
        "machine": (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / tick,  # minus idle, iowait
    }


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds between two samples (processes started in between count from their start).

    PostgreSQL's figure is the difference of the totals, as the server's: a backend that exits
    in between (a connection past ``DB_CONN_MAX_AGE``) moves its whole life's CPU to the
    postmaster, where ``before`` already counted the part until then. Summed per process
    instead (as until 2026-12), that part counted twice: every persistent connection of the load
    test's server closed during its second phase and doubled PostgreSQL's CPU a request there.
    Left: a backend exiting while a sample reads /proc, after its postmaster, misses that sample
    and counts its time before it in the next interval (a window of a few milliseconds); and a
    whole PostgreSQL server stopping in between takes its time away."""
    used = {name: after[name] - before[name] for name in ("server", "client", "machine")}
    used["postgres"] = sum(after["postgres"].values()) - sum(before["postgres"].values())
    return used
