"""Run by test_concurrency: N threads of this process ask for the same token when the go-file appears.

Usage: concurrent_access.py WORKER KEY THREADS GO_FILE. Prints the tokens' SHA-256 as a JSON list
(never the tokens themselves).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from connections.oauth.tokens import access_token  # noqa: E402


def main() -> None:
    worker, key, count, go_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    results: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        while not go_file.exists():
            time.sleep(0.002)
        try:
            value = hashlib.sha256(access_token(worker, key).encode()).hexdigest()
        except Exception as exc:
            value = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    (go_file.parent / f"ready-{os.getpid()}").touch()
    for thread in threads:
        thread.join(timeout=120)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
