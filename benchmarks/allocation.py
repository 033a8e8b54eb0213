"""Allocation engine at scale: 10,000 tenants x 20 pools x 10 projects per tenant (pure engine,
both levels), then prints seconds and the process's peak memory (max RSS).

Usage: .venv/bin/python benchmarks/allocation.py [--tenants 10000] [--pools 20] [--projects 10]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.domain.allocation import Method, Rule, allocate, split_line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--projects", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(3)
    projects = {
        f"tenant-{t:05d}": {
            f"project-{p}": Decimal(rng.randint(0, 500_000)) / 100 for p in range(args.projects)
        }
        for t in range(args.tenants)
    }
    tenant_totals = {t: sum(ps.values(), Decimal(0)) for t, ps in projects.items()}
    rules = [
        Rule(Method.USAGE, "cpu_seconds"),
        Rule(Method.PROPORTIONAL, "runs"),
        Rule(Method.FIXED_VARIABLE, "tokens", fixed_fraction=Decimal("0.3")),
    ]
    pools = [Decimal(rng.randint(-50_000, 5_000_000)) / 100 for _ in range(args.pools)]

    started = time.perf_counter()
    lines = 0
    for index, amount in enumerate(pools):
        rule = rules[index % len(rules)]
        for line in allocate(amount, rule, tenant_totals):
            lines += 1
            if not line.unallocated:
                lines += len(split_line(line, projects[line.key]))
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"tenants {args.tenants}")
    print(f"pools {args.pools}")
    print(f"projects_per_tenant {args.projects}")
    print(f"lines {lines}")
    print(f"seconds {seconds:.2f}")
    print(f"peak_memory_mb {peak_kib / 1024:.1f}")


if __name__ == "__main__":
    main()
