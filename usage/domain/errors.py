"""Error fingerprints: which errors of different runs are the same error (pure, no database).

A fingerprint is a hash of the error's type, its message with the parts that change from run to
run replaced by placeholders (numbers, hex ids, uuids, quoted strings, paths and urls, timestamps),
and the top frame of its stack trace: the innermost frame of the application (not of the runtime
or a library), as function and file without the line number. Stack traces are read in the
formats of Python, Java and .NET, JavaScript (Node and browsers) and Go; a trace in none of them
has no top frame (the type and message still group). Nothing here reads or writes storage.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

# Characters of the normalised message kept for grouping and shown as the group's message.
NORMALISED_LENGTH = 1000
TOP_FRAME_LENGTH = 300

# Order matters: wider shapes first, so a url is not half a path and a uuid not three numbers.
_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"), "<url>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "<str>"),
    (re.compile(r"(?:\b[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "<n>"),
)
_SPACES = re.compile(r"\s+")


def message_normalise(message: str) -> str:
    """``message`` with what varies between occurrences replaced by placeholders, on one line."""
    text = message[: NORMALISED_LENGTH * 4]
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()[:NORMALISED_LENGTH]


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    file: str
    library: bool  # the runtime's or a dependency's frame, not the application's

    def label(self) -> str:
        where = f" ({self.file})" if self.file else ""
        return f"{self.function}{where}"[:TOP_FRAME_LENGTH]


def _short_path(path: str) -> str:
    """The last two parts of a path (deploy directories and checkouts differ between hosts)."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    return "/".join(parts[-2:])


# Python: `  File "/app/billing/charge.py", line 42, in charge` (outermost first).
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+(?:, in (?P<func>\S+))?', re.M)
_PY_LIBRARY = re.compile(r"site-packages|dist-packages|[\\/]lib[\\/]python\d|^<frozen |^<string>")
# Java `at com.acme.Charge.run(Charge.java:42)`;
# .NET `at Acme.Charge.Run(Int32 id) in C:\src\Charge.cs:line 42`.
_JVM_FRAME = re.compile(
    r"^\s*at (?P<func>[\w$.<>/]+)\((?P<where>[^)]*)\)(?: in (?P<file>[^\n]+?):line \d+)?\s*$", re.M
)
_JVM_LIBRARY = re.compile(
    r"^(?:java|javax|jdk|sun|com\.sun|kotlin|kotlinx|scala|groovy|org\.springframework|"
    r"org\.apache|org\.hibernate|io\.netty|reactor|okhttp3|System|Microsoft|Newtonsoft|"
    r"Npgsql)\."
)
# JavaScript: `    at charge (/app/src/billing.js:10:5)`, `    at /app/src/x.js:1:2`,
# `    at async run (file:///app/a.mjs:3:9)`; browsers' `charge@https://x/app.js:10:5`.
_JS_FRAME = re.compile(
    r"^\s*(?:at (?:async )?(?:(?P<func>[^\s(]+(?: \[as [^\]]+\])?) \()?(?P<file>[^()\s]+?)"
    r":\d+(?::\d+)?\)?|(?P<bfunc>[^@\s]*)@(?P<bfile>\S+?):\d+:\d+)\s*$",
    re.M,
)
_JS_LIBRARY = re.compile(r"node_modules|^node:|^internal[\\/]|<anonymous>|^native$")
# Go: a function line `main.charge(0x1, ...)` then `\t/app/billing/charge.go:42 +0x1d`.
_GO_FRAME = re.compile(
    r"^(?:created by )?(?P<func>\S+?)(?:\([^()\n]*\))?(?: in goroutine \d+)?\n"
    r"\t(?P<file>\S+\.go):\d+",
    re.M,
)


_GO_STD = frozenset(
    (
        "bufio",
        "bytes",
        "context",
        "crypto",
        "database",
        "encoding",
        "errors",
        "fmt",
        "io",
        "log",
        "math",
        "net",
        "os",
        "panic",
        "path",
        "reflect",
        "regexp",
        "runtime",
        "sort",
        "strconv",
        "strings",
        "sync",
        "syscall",
        "testing",
        "time",
        "unicode",
    )
)


def _go_library(function: str, file: str) -> bool:
    """The runtime's, the standard library's or a dependency's frame (module cache, vendor)."""
    path = file.replace("\\", "/")
    if "/pkg/mod/" in path or "/vendor/" in path:
        return True
    if "/" in function:  # an import path: the standard library's have no dot in the first part
        return "." not in function.split("/", 1)[0]
    return function.split(".", 1)[0].split("(", 1)[0] in _GO_STD


def _python_frames(trace: str) -> list[Frame]:
    return [
        Frame(m["func"] or "<module>", _short_path(m["file"]), bool(_PY_LIBRARY.search(m["file"])))
        for m in _PY_FRAME.finditer(trace)
    ][::-1]  # innermost first


def _jvm_frames(trace: str) -> list[Frame]:
    frames = []
    for m in _JVM_FRAME.finditer(trace):
        where = m["file"] or m["where"].split(":", 1)[0]
        file = _short_path(where) if ("." in where and " " not in where) else ""
        frames.append(Frame(m["func"], file, bool(_JVM_LIBRARY.match(m["func"]))))
    return frames


def _js_frames(trace: str) -> list[Frame]:
    frames = []
    for m in _JS_FRAME.finditer(trace):
        function = m["func"] or m["bfunc"] or "<anonymous>"
        file = m["file"] or m["bfile"] or ""
        library = bool(_JS_LIBRARY.search(file))
        frames.append(Frame(function, _short_path(file.removeprefix("file://")), library))
    return frames


def _go_frames(trace: str) -> list[Frame]:
    return [
        Frame(m["func"], _short_path(m["file"]), _go_library(m["func"], m["file"]))
        for m in _GO_FRAME.finditer(trace)
    ]


def frames_parse(stacktrace: str) -> list[Frame]:
    """The frames of a stack trace, innermost first; [] for a format not recognised."""
    if not stacktrace:
        return []
    for parse in (_python_frames, _go_frames, _jvm_frames, _js_frames):
        frames = parse(stacktrace)
        if frames:
            return frames
    return []


def top_frame(stacktrace: str) -> str:
    """The innermost application frame as ``function (dir/file)``; the innermost frame when every
    frame is a library's; "" when no frame is recognised."""
    frames = frames_parse(stacktrace)
    if not frames:
        return ""
    chosen = next((f for f in frames if not f.library), frames[0])
    return chosen.label()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    value: str  # 32 hex characters
    normalised_message: str
    top_frame: str


# An error group's fingerprint as ``fingerprint`` writes it: what a page or link may name.
FINGERPRINT_RE = re.compile(r"[0-9a-f]{32}")


def fingerprint(error_type: str, message: str, stacktrace: str) -> Fingerprint:
    """The group an error belongs to: type + normalised message + top frame."""
    normalised = message_normalise(message)
    frame = top_frame(stacktrace)
    digest = hashlib.sha256("\x1f".join((error_type.strip(), normalised, frame)).encode())
    return Fingerprint(digest.hexdigest()[:32], normalised, frame)


@dataclass(frozen=True, slots=True)
class ErrorIn:
    """One error to store: where it happened (run, job attempt, span) and what it says; texts
    already bounded (``usage.domain.limits``)."""

    trace_id: str
    span_id: str
    seq: int
    run_id: str
    project: str
    job_id: str
    step_name: str
    attempt: int | None
    span_name: str
    source: str  # exception | status
    occurred_at: datetime
    type: str
    message: str
    stacktrace: str
