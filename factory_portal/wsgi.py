"""WSGI entry point.

The URL configurations (and through them the views' imports: pandas, plotly, openpyxl) are
loaded here, when a worker process starts, rather than by its first request, which would
otherwise take seconds after every start and every worker recycle.
"""

import gc
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

application = get_wsgi_application()
for _urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
    get_resolver(_urlconf).url_patterns  # noqa: B018 - imports every view module

# Everything loaded so far lives as long as the worker: keep it out of the cyclic garbage
# collector's full passes, which otherwise walk these hundreds of thousands of objects again and
# again while a large request (an OTLP export of thousands of points) allocates (gc.freeze).
gc.freeze()
