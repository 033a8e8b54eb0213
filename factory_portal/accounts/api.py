"""``GET /api/v1/whoami``: what the presented credentials are (tenant, key prefix, scopes)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from factory_portal.accounts.authentication import ANY_KEY, Access, ApiAccess
from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.permissions import signed_in_user
from factory_portal.tenants.connection import connection_tenant


class WhoAmIApi(APIView):
    access = ApiAccess(read=Access(area="signed_in", scope=ANY_KEY))

    @extend_schema(
        summary="Who the credentials are: tenant, and key (prefix, scopes) or user",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        tenant = connection_tenant()
        body: dict[str, object] = {"tenant": tenant.slug}
        if isinstance(request.auth, ApiKey):
            body["api_key"] = {
                "prefix": request.auth.prefix,
                "name": request.auth.name,
                "scopes": request.auth.scopes,
            }
        else:
            user = signed_in_user(request.user)
            body["user"] = {"email": user.email, "role": user.role}
        return Response(body)
