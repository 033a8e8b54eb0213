"""The three demo customers: different sizes, model line-ups and trends."""

from __future__ import annotations

from web.demo.generate import ModelRef, ProjectSpec, TenantProfile

SONNET = ModelRef("anthropic", "claude-sonnet-4-5", "anthropic")
HAIKU = ModelRef("anthropic", "claude-haiku-4-5", "anthropic")
# Acme's planner calls Opus without cache_control: the savings page advises turning it on.
OPUS_UNCACHED = ModelRef("anthropic", "claude-opus-4-1", "none")
GPT5 = ModelRef("openai", "gpt-5", "auto")
GPT41 = ModelRef("openai", "gpt-4.1", "auto")
GPT41_MINI = ModelRef("openai", "gpt-4.1-mini", "auto")
EMBED_SMALL = ModelRef("openai", "text-embedding-3-small", "none")
GEMINI_PRO = ModelRef("google", "gemini-2.5-pro", "auto")
GEMINI_FLASH = ModelRef("google", "gemini-2.5-flash", "auto")
GEMINI_EMBED = ModelRef("google", "gemini-embedding-001", "none")

PROFILES: tuple[TenantProfile, ...] = (
    TenantProfile(
        slug="acme",
        name="Acme Corp",
        runs_per_day=60,
        growth=1.4,
        projects=(
            ProjectSpec(
                "checkout-service", "Checkout service", (("microservice", 0.7), ("library", 0.3))
            ),
            ProjectSpec("mobile-app", "Mobile app", (("frontend", 0.8), ("microservice", 0.2))),
            ProjectSpec("data-platform", "Data platform", (("pipeline", 0.8), ("library", 0.2))),
            ProjectSpec(
                "internal-tools",
                "Internal tools",
                (("library", 0.5), ("frontend", 0.3), ("microservice", 0.2)),
            ),
        ),
        models={"plan": OPUS_UNCACHED, "main": SONNET, "light": HAIKU, "embed": EMBED_SMALL},
        unpriced_model=ModelRef("self-hosted", "acme-coder-ft-v3", "none"),
        active_now=6,
        # A third of the test-writing runs on Haiku: as good at first pass, far cheaper.
        alternates={"write-tests": (HAIKU, 0.35)},
    ),
    TenantProfile(
        slug="globex",
        name="Globex Corporation",
        runs_per_day=28,
        growth=1.1,
        projects=(
            ProjectSpec(
                "billing-engine", "Billing engine", (("microservice", 0.6), ("library", 0.4))
            ),
            ProjectSpec("partner-api", "Partner API", (("microservice", 1.0),)),
            ProjectSpec("analytics", "Analytics", (("pipeline", 0.7), ("frontend", 0.3))),
        ),
        models={"plan": GPT5, "main": GPT41, "light": GPT41_MINI, "embed": EMBED_SMALL},
        active_now=3,
        alternates={"review": (GPT41, 0.4)},  # review tried on gpt-4.1: dearer, no better
    ),
    TenantProfile(
        slug="initech",
        name="Initech",
        runs_per_day=12,
        growth=0.85,
        projects=(
            ProjectSpec("tps-reports", "TPS reports", (("pipeline", 0.6), ("frontend", 0.4))),
            ProjectSpec(
                "legacy-migration", "Legacy migration", (("library", 0.5), ("microservice", 0.5))
            ),
        ),
        models={
            "plan": GEMINI_PRO,
            "main": GEMINI_PRO,
            "light": GEMINI_FLASH,
            "embed": GEMINI_EMBED,
        },
        active_now=2,
    ),
)
