"""Under the production server (gunicorn with several worker processes), ``/metrics`` adds up
the samples of every worker, whichever worker answers the scrape, including workers that have
exited since (gunicorn recycles them after ``WEB_MAX_REQUESTS``)."""

from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families

from tests.support import production_server

REQUESTS = 40


def _get(port: int, path: str) -> tuple[int, bytes]:
    # Generous: on a busy machine a recycled worker takes seconds to boot before it answers.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)  # a new connection each time: spread over the workers
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_metrics_add_up_across_gunicorn_workers(tmp_path):
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "1",
        # Workers are replaced every ~10 requests: the samples come from several processes.
        "WEB_MAX_REQUESTS": "10",
    }
    with production_server(env) as server:
        for _ in range(REQUESTS):
            assert _get(server.port, "/healthz")[0] == 200
        status, body = _get(server.port, "/metrics")
    assert server.process.returncode == 0  # graceful stop on SIGTERM
    assert status == 200
    samples = {
        (s.name, s.labels.get("route"), s.labels.get("status")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("http_request_duration_seconds_count", "/healthz", "200")] == REQUESTS
    writers = {p.name.split("_")[-1] for p in tmp_path.glob("histogram_*.db")}
    assert len(writers) >= 3, "requests were answered by several (replaced) worker processes"
