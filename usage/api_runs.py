"""``/api/v1/runs`` on a tenant host: one URL, two views. ``GET`` lists runs
(``usage.read_api.RunListApi``), ``POST`` takes lifecycle updates (``usage.api.RunIngestApi``);
this class only joins them, each keeping its own access, throttle and OpenAPI operation."""

from __future__ import annotations

from factory_portal.accounts.authentication import ApiAccess
from usage.api import RunIngestApi
from usage.read_api import RunListApi


class RunsApi(RunListApi, RunIngestApi):
    """``GET /api/v1/runs`` (scope ``read``): runs, filtered, in keyset pages;
    ``POST`` is the lifecycle ingest (scope ``ingest``)."""

    access = ApiAccess(read=RunListApi.access.read, write=RunIngestApi.access.write)

    def get_throttles(self):  # type: ignore[no-untyped-def]
        read = self.request.method in ("GET", "HEAD")
        self.throttle_scope = RunListApi.throttle_scope if read else RunIngestApi.throttle_scope
        return super().get_throttles()
