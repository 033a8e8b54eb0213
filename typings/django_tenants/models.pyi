from typing import Any

from django.db import models

class TenantMixin(models.Model):
    auto_drop_schema: bool
    auto_create_schema: bool
    schema_name = models.CharField(max_length=63)

    class Meta:
        abstract = True

    def save(self, verbosity: int = ..., *args: Any, **kwargs: Any) -> None: ...
    def delete(
        self, *args: Any, force_drop: bool = ..., **kwargs: Any
    ) -> tuple[int, dict[str, int]]: ...
    def create_schema(
        self, check_if_exists: bool = ..., sync_schema: bool = ..., verbosity: int = ...
    ) -> bool: ...
    def get_primary_domain(self) -> DomainMixin | None: ...

class DomainMixin(models.Model):
    domain = models.CharField(max_length=253)
    tenant: models.ForeignKey[Any, Any]
    is_primary = models.BooleanField()

    class Meta:
        abstract = True
