"""``/api/v1/budgets``: monthly budgets of the tenant or a project. Read: keys with ``read``,
users who may see the budgets page (finance, admin); create, change and delete: keys with
``manage``, admins. Amounts are decimal strings."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from rest_framework import generics, serializers

from billing.models import Budget
from billing.services import budget_set
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import BoundedListField


class BudgetSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), coerce_to_string=True
    )
    thresholds = BoundedListField(
        child=serializers.IntegerField(min_value=1, max_value=1000),
        min_length=1,
        max_length=20,
        required=False,
    )

    class Meta:
        model = Budget
        fields = ["id", "project", "amount", "thresholds", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        project = attrs.get("project", self.instance.project if self.instance else "")
        clash = Budget.objects.filter(project=project)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            scope = f"project {project!r}" if project else "the tenant"
            raise serializers.ValidationError({"project": f"{scope} already has a budget."})
        return attrs

    def save(self, **kwargs):  # type: ignore[no-untyped-def]
        data = {**self.validated_data, **kwargs}
        instance = self.instance
        try:
            budget = budget_set(
                amount=data.get("amount", instance.amount if instance else Decimal(0)),
                project=data.get("project", instance.project if instance else ""),
                thresholds=data.get("thresholds", instance.thresholds if instance else None),
            )
        except ValidationError as exc:
            raise serializers.ValidationError({"detail": exc.messages}) from exc
        if instance is not None and instance.pk != budget.pk:
            instance.delete()  # the scope changed: the old budget is replaced
        self.instance = budget
        return budget


BUDGET_ACCESS = ApiAccess(
    read=Access(area="budgets", scope="read"), write=Access(area="admin", scope="manage")
)


class BudgetListApi(generics.ListCreateAPIView):
    access = BUDGET_ACCESS
    serializer_class = BudgetSerializer
    queryset = Budget.objects.order_by("project")


class BudgetDetailApi(generics.RetrieveUpdateDestroyAPIView):
    access = BUDGET_ACCESS
    serializer_class = BudgetSerializer
    queryset = Budget.objects.all()
