"""`make bench`: run every benchmark on a throw-away database and print ratios to in-run baselines."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="repetitions; the median is reported")
    parser.add_argument("--calls", type=int, default=2000, help="calls per repetition")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="workers-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from . import mcp_call, pacer_wait, token_hot_path

    token_hot_path.run(rounds=args.rounds, calls=args.calls)
    pacer_wait.run(rounds=args.rounds, calls=args.calls)
    mcp_call.run(rounds=args.rounds, calls=args.calls)


if __name__ == "__main__":
    main()
