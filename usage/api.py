"""Usage API views (thin: parse, call a selector, serialize)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.generics import ListAPIView

from factory_portal.accounts.authentication import CanRead
from usage.models import Project


class ProjectListApi(ListAPIView):
    """``GET /api/v1/projects``: the tenant's projects, paginated (scope ``read``)."""

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Project
            fields = ["slug", "name", "created_at"]

    permission_classes = [CanRead]
    serializer_class = OutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Project.objects.order_by("slug")
