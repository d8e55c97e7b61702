"""``python -m otel_tele …`` runs the ``otel-tele`` command (for when ``.venv/bin`` is not on PATH)."""

import sys

from otel_tele.cli import main

sys.exit(main())
