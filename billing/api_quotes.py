"""``POST /api/v1/quotes`` (keys with scope ``read``; users who may see the costs page): the
quote of a run before it starts, from the comparable runs of the last 30 days
(``billing.selectors.quotes``). A POST because it takes a body (the expected steps); it writes
nothing. Amounts are decimal strings with cents, durations integer milliseconds.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors.quotes import HISTORY_DAYS, Quote, Spread, quote_budget, quote_compute
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import BoundedListField
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from usage.domain.limits import RUN_TYPE_LENGTH, STEP_NAME_LENGTH, TEMPLATE_LENGTH
from usage.selectors import project_slugs

MAX_STEPS = 200


class NoComparableRuns(APIException):
    status_code = 422
    default_detail = "No comparable runs"
    default_code = "no_comparable_runs"


class QuoteInputSerializer(serializers.Serializer):
    project = serializers.SlugField(max_length=100, help_text="the project's slug")
    template = serializers.CharField(
        max_length=TEMPLATE_LENGTH, allow_blank=True, trim_whitespace=False
    )
    run_type = serializers.CharField(
        max_length=RUN_TYPE_LENGTH, allow_blank=True, trim_whitespace=False
    )
    steps = BoundedListField(
        child=serializers.CharField(max_length=STEP_NAME_LENGTH),
        min_length=1,
        max_length=MAX_STEPS,
        required=False,
        allow_null=True,
        help_text="expected step names: the quote is then for a run of these steps",
    )


def _money(spread: Spread) -> dict[str, str]:
    return {"p50": f"{spread.p50:.2f}", "p90": f"{spread.p90:.2f}"}


def quote_json(quote: Quote) -> dict[str, object]:
    return {
        "project": quote.project,
        "template": quote.template,
        "run_type": quote.run_type,
        "scope": quote.scope,
        "comparable_runs": quote.runs,
        "period": {"from": quote.start.isoformat(), "to": quote.end.isoformat()},
        "ai_cost": _money(quote.ai_cost),
        "total_cost": _money(quote.total_cost),
        "duration_ms": {"p50": int(quote.duration_ms.p50), "p90": int(quote.duration_ms.p90)},
        "steps": [
            {"step_name": s.step_name, "expected_cost": f"{s.expected_cost:.10f}", "runs": s.runs}
            for s in quote.steps
        ],
    }


EXAMPLE = {
    "project": "checkout",
    "template": "react-spa",
    "run_type": "feature",
    "scope": "project",
    "comparable_runs": 412,
    "period": {"from": "2026-11-01", "to": "2026-11-30"},
    "ai_cost": {"p50": "3.12", "p90": "7.85"},
    "total_cost": {"p50": "3.40", "p90": "8.31"},
    "duration_ms": {"p50": 540000, "p90": 1310000},
    "steps": [{"step_name": "implement", "expected_cost": "2.1034000000", "runs": 830}],
    "budget": {
        "month": "2026-11",
        "amount": "5000.00",
        "spent": "3120.44",
        "headroom_after_p90": "1871.71",
    },
    "currency": "USD",
}


class QuoteApi(APIView):
    """Answers 404 for a project the tenant does not have, 422 when no run of the template
    finished in the last 30 days, 400 (naming the field) for a malformed body or a step never
    measured on the template."""

    access = ApiAccess(write=Access(area="costs", scope="read"))

    @extend_schema(
        operation_id="quote",
        summary="Quote a run before it starts: AI cost, total cost and duration P50/P90",
        description=(
            f"From the comparable runs that finished in the last {HISTORY_DAYS} days (tenant's"
            " days): same project, template and run type when at least 20 ran, else same template"
            " and run type, else the template (`scope` says which). Failed and cancelled runs"
            " count. With `steps`, the AI spread is scaled to those steps' expected cost. `budget`"
            " is the month's budget (the project's, else the tenant's) left after the P90; null"
            " without a budget."
        ),
        request=QuoteInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the quote"),
            (422, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                {"$ref": "#/components/schemas/Problem"}, description="no comparable finished run"
            ),
        },
        examples=[OpenApiExample("quote", value=EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def post(self, request: Request) -> Response:
        form = QuoteInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        project = data["project"]
        if project not in project_slugs():
            raise NotFound(f"No project {project!r} in this tenant.")
        quote = quote_compute(
            project=project,
            template=data["template"],
            run_type=data["run_type"],
            steps=data.get("steps"),
        )
        if quote is None:
            raise NoComparableRuns(
                f"No run of template {data['template']!r} finished in the last {HISTORY_DAYS}"
                " days: there is no history to quote from."
            )
        unknown = [s.step_name for s in quote.steps if s.runs == 0]
        if unknown:
            raise serializers.ValidationError(
                {
                    "steps": f"No history of step(s) {', '.join(map(repr, unknown[:10]))} in"
                    f" template {quote.template!r} in the last {HISTORY_DAYS} days."
                }
            )
        budget = quote_budget(quote)
        return Response(
            {
                **quote_json(quote),
                "budget": None
                if budget is None
                else {
                    "month": f"{budget.month:%Y-%m}",
                    "project": budget.project or None,
                    "basis": budget.basis,
                    "amount": f"{budget.amount:.2f}",
                    "spent": f"{budget.spent:.2f}",
                    "headroom_after_p90": f"{budget.headroom_after_p90:.2f}",
                },
                "currency": "USD",
            }
        )
