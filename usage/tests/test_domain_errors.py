"""Error fingerprints: normalised messages and top frames of real-looking stack traces."""

from __future__ import annotations

import pytest

from usage.domain.errors import fingerprint, frames_parse, message_normalise, top_frame
from usage.tests.otlp_spans import JAVA_TRACE

PYTHON_TRACE = """Traceback (most recent call last):
  File "/srv/factory/releases/20261130/app/pipeline/run.py", line 88, in execute
    result = step.run(ctx)
  File "/srv/factory/releases/20261130/app/steps/deploy.py", line 41, in run
    client.apply(manifest)
  File "/usr/local/lib/python3.12/site-packages/kubernetes/client/api.py", line 512, in apply
    raise ApiException(status=409)
kubernetes.client.exceptions.ApiException: (409) Reason: Conflict
"""
PYTHON_CHAINED = """Traceback (most recent call last):
  File "/app/steps/fetch.py", line 10, in fetch
    return cache[key]
KeyError: 'sha-1'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/steps/fetch.py", line 12, in fetch
    return download(key)
  File "/app/steps/net.py", line 30, in download
    raise TimeoutError("timed out")
TimeoutError: timed out
"""
DOTNET_TRACE = """System.InvalidOperationException: Sequence contains no elements
   at System.Linq.ThrowHelper.ThrowNoElementsException()
   at System.Linq.Enumerable.First[TSource](IEnumerable`1 source)
   at Acme.Factory.Steps.TestRunner.Execute(RunContext c) in C:\\src\\Steps\\TestRunner.cs:line 18
   at Acme.Factory.Pipeline.Run() in C:\\build\\src\\Pipeline.cs:line 20
"""
NODE_TRACE = """TypeError: Cannot read properties of undefined (reading 'id')
    at buildManifest (/app/src/deploy/manifest.js:42:17)
    at async Promise.all (index 0)
    at async deploy (/app/src/deploy/index.js:12:3)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
"""
NODE_LIBRARY_FIRST = """Error: connect ECONNREFUSED 10.0.0.12:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)
    at Client._connect (/app/node_modules/pg/lib/client.js:132:11)
    at migrate (/app/src/db/migrate.js:8:9)
"""
BROWSER_TRACE = """render@https://cdn.example.com/app.4f3a.js:10:5
dispatch@https://cdn.example.com/vendor.js:1:200
"""
GO_TRACE = """panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
github.com/acme/factory/steps.(*Deployer).Apply(0xc000010000, {0x0, 0x0})
\t/build/steps/deploy.go:77 +0x1d
main.main()
\t/build/cmd/worker/main.go:19 +0x25
exit status 2
"""
GO_STDLIB_FIRST = """goroutine 7 [running]:
encoding/json.(*decodeState).object(0xc0001)
\t/usr/local/go/src/encoding/json/decode.go:612 +0x1d
github.com/lib/pq.(*conn).query(0xc0002)
\t/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go:900 +0x13
main.loadConfig(...)
\t/app/config.go:22 +0x77
"""


@pytest.mark.parametrize(
    ("trace", "frame"),
    [
        (PYTHON_TRACE, "run (steps/deploy.py)"),
        (PYTHON_CHAINED, "download (steps/net.py)"),
        (JAVA_TRACE, "com.acme.billing.OrderService.load (OrderService.java)"),
        (DOTNET_TRACE, "Acme.Factory.Steps.TestRunner.Execute (Steps/TestRunner.cs)"),
        (NODE_TRACE, "buildManifest (deploy/manifest.js)"),
        (NODE_LIBRARY_FIRST, "migrate (db/migrate.js)"),
        (BROWSER_TRACE, "render (cdn.example.com/app.4f3a.js)"),
        (GO_TRACE, "github.com/acme/factory/steps.(*Deployer).Apply (steps/deploy.go)"),
        (GO_STDLIB_FIRST, "main.loadConfig (app/config.go)"),
    ],
)
def test_the_top_frame_is_the_innermost_application_frame_without_line(trace, frame):
    assert top_frame(trace) == frame


def test_a_trace_of_library_frames_only_uses_the_innermost():
    only_library = '  File "/usr/lib/python3.12/site-packages/x/y.py", line 3, in boom\n'
    assert top_frame(only_library) == "boom (x/y.py)"


@pytest.mark.parametrize("trace", ["", "no frames here", "at nothing useful"])
def test_unrecognised_traces_have_no_top_frame(trace):
    assert frames_parse(trace) == [] and top_frame(trace) == ""


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("Order 8812 not found at 2026-11-30T09:12:44.123Z", "Order <n> not found at <time>"),
        ("Key (id)=(3f2a9c1e-55b1-4c3e-9d5e-0a1b2c3d4e5f) exists", "Key (id)=(<uuid>) exists"),
        ("file '/tmp/x.txt' missing", "file <str> missing"),
        ("GET https://api.github.com/repos/a/b/pulls/12 gave 502", "GET <url> gave <n>"),
        ("open /var/lib/app/cache/ab12.json: no such file", "open <path>: no such file"),
        ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing", "commit <hex> missing"),
        ("bad pointer 0x7ffe12", "bad pointer <hex>"),
        ("connect ECONNREFUSED 10.0.0.12:5432", "connect ECONNREFUSED <ip>"),
        ("retry 3 of 5\n  after 1.5s", "retry <n> of <n> after <n>s"),
        ("deploy_error", "deploy_error"),
        ("http2 stream s3 failed", "http2 stream s3 failed"),
    ],
)
def test_messages_are_normalised(message, normalised):
    assert message_normalise(message) == normalised


def test_the_same_error_in_different_runs_has_one_fingerprint():
    a = fingerprint("DeployConflict", "manifest 'a-1.yaml' conflicts with revision 41", GO_TRACE)
    b = fingerprint("DeployConflict", "manifest 'b-9.yaml' conflicts with revision 7", GO_TRACE)
    moved = GO_TRACE.replace("deploy.go:77", "deploy.go:80")  # a line moved by an edit
    c = fingerprint("DeployConflict", "manifest 'c.yaml' conflicts with revision 2", moved)
    assert a.value == b.value == c.value and len(a.value) == 32
    assert a.normalised_message == "manifest <str> conflicts with revision <n>"


def test_type_message_and_top_frame_each_tell_groups_apart():
    base = fingerprint("ValueError", "bad input", PYTHON_TRACE)
    assert fingerprint("TypeError", "bad input", PYTHON_TRACE).value != base.value
    assert fingerprint("ValueError", "other input", PYTHON_TRACE).value != base.value
    assert fingerprint("ValueError", "bad input", NODE_TRACE).value != base.value


def test_huge_messages_are_normalised_within_bounds():
    assert len(message_normalise("x1 " * 100_000)) <= 1000
