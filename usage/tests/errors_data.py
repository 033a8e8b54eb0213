"""Errors for selector, page and API tests, stored through the real ingest service."""

from __future__ import annotations

from datetime import datetime

from django_tenants.utils import schema_context

from tests.support import TestTenant, run_update
from usage.domain.errors import ErrorIn
from usage.services.errors import span_errors_ingest

GO_PANIC = """goroutine 1 [running]:
github.com/acme/factory/steps.(*Deployer).Apply(0xc000010000)
\t/build/steps/deploy.go:77 +0x1d
main.main()
\t/build/cmd/worker/main.go:19 +0x25
"""


def error_make(
    tenant: TestTenant,
    run_id: str,
    at: datetime,
    *,
    error_type: str = "DeployConflict",
    message: str = "manifest 'a.yaml' conflicts with revision 41",
    stacktrace: str = GO_PANIC,
    template: str = "python-fastapi-service",
    step: str = "deploy",
    span: str = "s1",
    project: str = "web",
) -> None:
    """One error of run ``run_id`` (created with ``template`` if new) at ``at``."""
    with schema_context(tenant.schema):
        run_update(run_id, "Failed", at, project=project, template_recipe_id=template)
        span_errors_ingest(
            errors=[
                ErrorIn(
                    trace_id=f"{abs(hash(run_id)):032x}"[-32:],
                    span_id=f"{abs(hash(span)):016x}"[-16:],
                    seq=0,
                    run_id=run_id,
                    project=project,
                    job_id=step,
                    step_name=step,
                    attempt=1,
                    span_name="factory.job.execute",
                    source="exception",
                    occurred_at=at,
                    type=error_type,
                    message=message,
                    stacktrace=stacktrace,
                )
            ]
        )
