"""`make bench`: every benchmark on a fresh database, figures as ratios to in-run baselines.

Each benchmark module runs in its own process (Django is set up once per process, and a module
may start Celery workers or servers of its own) on a fresh SQLite file or a freshly created
PostgreSQL database; the figures are printed, then written together as JSON and as the README's
Markdown table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# In the order they run, each with the databases it runs on (a module may import Django models,
# so the parent, which sets up no Django, does not import them).
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "token_hot_path": ("sqlite", "postgres"),
    "sync_upsert": ("postgres", "sqlite"),
    "pacer_wait": ("sqlite",),
    "mcp_call": ("sqlite",),
    "admin_overview": ("sqlite", "postgres"),
    "startup": ("sqlite", "postgres"),
    "admin_lists": ("sqlite", "postgres"),
    "fanout": ("postgres",),
    "stampede": ("postgres",),
    "webhook_accept": ("sqlite", "postgres"),
}
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/workers_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _fresh_postgres(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def child(name: str, database: str, out: Path, quick: bool) -> None:
    folder = tempfile.mkdtemp(prefix="workers-bench-")
    if database == "postgres":
        _fresh_postgres(POSTGRES_URL)
        os.environ["DATABASE_URL"] = POSTGRES_URL
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("CELERY_BROKER_DIR", f"{folder}/broker")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from .report import Context

    module = importlib.import_module(f"benchmarks.{name}")
    module.run(Context(bench=name, database=database, quick=quick, out=out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--database", choices=["sqlite", "postgres"], help="only this database")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that each benchmark runs")
    parser.add_argument("--json", type=Path, default=ROOT / ".run" / "bench.json", help="where the figures go")
    parser.add_argument("--child", nargs=3, metavar=("NAME", "DATABASE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, database, out = args.child
        child(name, database, Path(out), args.quick)
        return
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    from .report import environment, markdown, read

    lines = Path(tempfile.mkstemp(prefix="workers-bench-", suffix=".jsonl")[1])
    failed = []
    for name in args.names or BENCHMARKS:
        for database in BENCHMARKS[name]:
            if args.database and database != args.database:
                continue
            print(f"== {name} on {database}", flush=True)
            command = [sys.executable, "-m", "benchmarks", "--child", name, database, str(lines)]
            started = time.monotonic()
            done = subprocess.run(command + (["--quick"] if args.quick else []), cwd=ROOT, check=False)
            print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
            if done.returncode:
                failed.append(f"{name} on {database}")
    figures = read(lines)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"environment": environment(), "quick": args.quick, "figures": [f.__dict__ for f in figures]}
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print("\n" + markdown(figures))
    print(f"\nfigures written to {args.json}")
    missed = [f for f in figures if f.met is False]
    if missed:
        print(f"{len(missed)} figure(s) missed their target")
    if failed:
        sys.exit(f"benchmark(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
