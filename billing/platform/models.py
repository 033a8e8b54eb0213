"""The price book: unit prices per provider, model and token kind, with effective dates.

Public schema. Prices are USD per million tokens with 10 decimal places. An entry is never edited
in place once used; a new price gets a new ``effective_from``.
"""

from __future__ import annotations

from django.db import models


class TokenKind(models.TextChoices):
    INPUT = "input"
    OUTPUT = "output"
    CACHE_READ = "cache_read"
    CACHE_WRITE = "cache_write"


class PriceBookEntry(models.Model):
    class Source(models.TextChoices):
        CATALOGUE = "catalogue", "genai-prices catalogue"
        OPERATOR = "operator", "Operator"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    token_kind = models.CharField(max_length=16, choices=TokenKind.choices)
    price_per_mtok = models.DecimalField(max_digits=20, decimal_places=10)
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    source_version = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "token_kind", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "token_kind", "effective_from"],
                name="pricebook_unique_effective",
            ),
            models.CheckConstraint(
                condition=models.Q(price_per_mtok__gte=0), name="pricebook_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.token_kind} {self.price_per_mtok}/MTok"
