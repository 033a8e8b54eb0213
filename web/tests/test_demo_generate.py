"""The demo generator is deterministic and realistic (pure: no database)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from web.demo.generate import generate_history
from web.demo.profiles import PROFILES
from web.demo.traces import TokenSampler, trace_samples

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
ACME = PROFILES[0]


def _history(seed: int, days: int = 30):
    rng = random.Random(f"{seed}:{ACME.slug}")
    return generate_history(
        profile=ACME, rng=rng, now=NOW, days=days, samples=TokenSampler(rng), incident_day=12
    )


def test_same_seed_same_history_other_seed_other_history():
    first, second, other = _history(5), _history(5), _history(6)
    assert first.runs == second.runs
    assert first.llm == second.llm
    assert first.infra == second.infra
    assert first.runs != other.runs


def test_history_looks_like_a_factory():
    history = _history(11, days=60)
    finished = [r for r in history.runs if r.finished_at is not None]
    statuses = Counter(r.status for r in finished)
    success = statuses["Succeeded"] / len(finished)
    assert 0.90 < success < 0.98
    assert statuses["Failed"] > 0 and statuses["Cancelled"] > 0
    assert all(r.failure_type for r in finished if r.status != "Succeeded")
    assert len({r.run_type for r in history.runs}) >= 3
    assert len({r.template_recipe_id for r in history.runs}) >= 5
    # retries: some jobs have a second attempt after a failed first one
    assert any(j.attempt == 2 for j in history.jobs)
    # long tails: the slowest runs take far longer than the median one
    durations = sorted(r.duration_ms for r in finished if r.status == "Succeeded")
    assert durations[int(len(durations) * 0.99)] > 2 * durations[len(durations) // 2]
    # still active at "now", and nothing after it
    assert any(r.status in ("Requested", "Running") for r in history.runs)
    assert all(r.requested_at < NOW for r in history.runs)
    assert all(e.occurred_at <= NOW for e in history.llm)
    # several real models, and calls of the self-hosted model the price book cannot price
    assert len({e.model for e in history.llm}) >= 4


def test_token_counts_come_from_the_real_traces():
    history = _history(3, days=5)
    code = {s.input_tokens for s in trace_samples("code")}
    conv = {s.input_tokens for s in trace_samples("conv")}
    embeddings = [e for e in history.llm if e.operation == "embedding"]
    assert embeddings and all(e.input_tokens in code | conv for e in embeddings)
    first_turns = {}
    for e in history.llm:
        first_turns.setdefault(e.job_id, e)
    assert all(e.input_tokens in code | conv for e in first_turns.values())
    # token invariants of the usage model
    assert all(e.cached_input_tokens + e.cache_write_tokens <= e.input_tokens for e in history.llm)


def test_volume_follows_weekdays():
    history = _history(9, days=60)
    by_weekday = Counter(r.requested_at.weekday() for r in history.runs)
    weekday_mean = sum(by_weekday[d] for d in range(5)) / 5
    weekend_mean = (by_weekday[5] + by_weekday[6]) / 2
    assert weekend_mean < 0.6 * weekday_mean


def test_anthropic_cache_hits_fall_after_the_cache_break():
    history = _history(11, days=30)
    assert history.cache_break_at is not None

    def hit_rate(calls):  # type: ignore[no-untyped-def]
        return sum(e.cached_input_tokens for e in calls) / sum(e.input_tokens for e in calls)

    anthropic = [e for e in history.llm if e.provider == "anthropic" and e.operation != "embedding"]
    before = [e for e in anthropic if e.occurred_at < history.cache_break_at]
    after = [e for e in anthropic if e.occurred_at >= history.cache_break_at]
    assert before and after
    assert hit_rate(after) < 0.6 * hit_rate(before)


def test_the_savings_page_has_something_to_show():
    """Acme's planner calls Opus without caching (caching advice), and a third of its
    test-writing runs on Haiku with a first-pass success like Sonnet's at a lower cost per run of
    the step (a cheaper model already used): the savings page's two recommendations."""
    history = _history(11, days=30)
    opus = [e for e in history.llm if e.model == "claude-opus-4-1"]
    assert opus and not any(e.cached_input_tokens for e in opus)
    assert any(e.cached_input_tokens for e in history.llm if e.model == "claude-sonnet-4-5")
    job_step = {j.id: j.step_name for j in history.jobs}
    models = Counter(
        e.model for e in history.llm if e.job_id is not None and job_step[e.job_id] == "write-tests"
    )
    assert models["claude-haiku-4-5"] > 0.2 * sum(models.values())
    assert models["claude-sonnet-4-5"] > 0.5 * sum(models.values())
    # one model per job: the alternate is chosen per run and step, retries keep it
    per_job = {}
    for e in history.llm:
        if e.job_id is not None and job_step[e.job_id] == "write-tests":
            per_job.setdefault((e.run_id, job_step[e.job_id]), set()).add(e.model)
    assert all(len(models - {"acme-coder-ft-v3"}) == 1 for models in per_job.values())
