"""OpenAPI description of the API-key authentication (drf-spectacular extension)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "factory_portal.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key of the host: `Authorization: Bearer fp_<prefix>_<secret>`, a"
                " tenant's key on its host (scopes `ingest`, `read`, `manage`), the platform key"
                " (scope `ingest`) on the operator host."
            ),
        }
