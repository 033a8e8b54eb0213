"""``manage.py seed_demo``: three demo tenants with 90 days of realistic history."""

from __future__ import annotations

import os
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from factory_portal.accounts.services import password_generate
from web.demo.seed import demo_seed, demo_users


class Command(BaseCommand):
    help = (
        "Create the demo tenants (acme, globex, initech) with users and 90 days of runs, jobs, LLM"
        " and infrastructure usage. Deterministic for a given --seed and --now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument(
            "--now", help="ISO timestamp the history ends at (default: the current time)"
        )
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD"),
            help="password of every demo user (default: $DEMO_PASSWORD, else generated)",
        )
        parser.add_argument(
            "--reset", action="store_true", help="drop and re-create demo tenants that exist"
        )

    def handle(self, *args, **options) -> None:
        if options["days"] < 1 or options["days"] > 400:
            raise CommandError("--days must be between 1 and 400.")
        now = timezone.now().replace(microsecond=0)
        if options["now"]:
            try:
                now = datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now is not an ISO timestamp: {options['now']!r}") from exc
            if timezone.is_naive(now):
                raise CommandError("--now needs a timezone, e.g. 2026-10-31T12:00:00+00:00.")
        password = options["password"] or password_generate()
        seeded = demo_seed(
            seed=options["seed"],
            now=now,
            days=options["days"],
            password=password,
            reset=options["reset"],
            progress=self.stdout.write,
        )
        if any(s.result for s in seeded):
            self.stdout.write(self.style.SUCCESS("Demo tenants seeded. Log in with:"))
            for s in seeded:
                emails = ", ".join(email for email, _ in demo_users(s.tenant.slug))
                self.stdout.write(f"  {s.tenant.get_primary_domain().domain}: {emails}")
            if not options["password"]:
                self.stdout.write(f"  password (all demo users, shown once): {password}")
