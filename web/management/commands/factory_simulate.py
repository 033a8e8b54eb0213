"""``manage.py factory_simulate``: a simulated factory exporting traces, metrics and logs to a
portal with the stock OpenTelemetry SDK (see ``web.demo.factory``). The demo runs it live."""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Simulate an AI software factory: every tick, export its runs (traces with exception "
        "events), runtime metrics and logs to a portal over OTLP/HTTP with the OpenTelemetry SDK."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="the portal, e.g. http://127.0.0.1:8000")
        parser.add_argument(
            "--host", default="", help="Host header (a tenant's site, e.g. acme.localhost:8000)"
        )
        parser.add_argument(
            "--key-env",
            default="FACTORY_API_KEY",
            help="environment variable holding the API key (ingest scope); default %(default)s",
        )
        parser.add_argument("--project", required=True, help="project slug the runs belong to")
        parser.add_argument("--tenant", default="", help="tenant slug (with the platform key)")
        parser.add_argument("--ticks", type=int, default=0, help="ticks to run; 0: until stopped")
        parser.add_argument(
            "--interval", type=float, default=10.0, help="seconds between ticks (wall clock)"
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        from web.demo.factory import SimulatedFactory

        key = os.environ.get(options["key_env"], "")
        if not key:
            raise CommandError(f"set {options['key_env']} to an API key with the ingest scope")
        if options["ticks"] < 0 or options["interval"] < 0:
            raise CommandError("--ticks and --interval must not be negative")
        factory = SimulatedFactory(
            endpoint=options["url"],
            key=key,
            project=options["project"],
            tenant=options["tenant"],
            host=options["host"],
            seed=options["seed"],
            tick_seconds=max(options["interval"], 1.0),
        )
        done = 0
        try:
            while not options["ticks"] or done < options["ticks"]:
                runs = factory.tick(time.time_ns())
                done += 1
                self.stdout.write(f"tick {done}: {runs} runs exported")
                if not options["ticks"] or done < options["ticks"]:
                    time.sleep(options["interval"])
        except KeyboardInterrupt:
            pass
        finally:
            factory.shutdown()
