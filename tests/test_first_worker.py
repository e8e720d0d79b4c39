"""The "Your first worker" walk-through, followed word for word on a fresh clone, offline.

The text is README.md's "## Your first worker" section. The repository's committed HEAD is cloned into a temporary folder (with this virtualenv
linked in as `.venv`, as `make venv` would have made it), and each block runs there as a reader
would: a ```python block whose first line names a file (`# my_workers/hello.py`) is saved as that
file, and each ```sh block runs through `sh -e` in an environment holding nothing of this test
session's settings. `make run` stays running in the background on a free port (the `PORT` the
Makefile reads from the environment) while the later blocks run in "another terminal";
`oauth start` is answered the way a person in a browser answers it: log in to the admin with the
password `make run`'s summary printed, then Authorize on the sandbox's consent page.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import ROOT, csrf_from, free_port
from .oauth_helpers import consent

pytestmark = pytest.mark.celery

SECTION = "## Your first worker"
# What a new user's shell has; nothing of this session's settings (database, keys, broker) leaks in.
KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "TERM")


def walkthrough() -> str:
    """README.md's section."""
    readme = (ROOT / "README.md").read_text()
    assert f"\n{SECTION}\n" in readme, f"README.md has no section {SECTION!r}"
    return SECTION + "\n" + readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", text, flags=re.S | re.M)


class Terminal:
    """`make run` in the background: its output so far, and Ctrl-C at the end."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.output = ""

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output, flags=re.M):
                return match
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536).decode(errors="replace")
                if not chunk:
                    break
                self.output += chunk
        raise AssertionError(f"`make run` did not print {pattern!r}:\n{self.output[-5000:]}")

    def ctrl_c(self) -> None:
        """SIGINT to the process group, as the terminal sends it; `workers serve` then stops its children."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        # make may exit first: wait for the whole group (`workers serve` waits for its children).
        deadline = time.monotonic() + 60
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            self.proc.poll()
            time.sleep(0.2)
        if _group_alive(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    folder = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True, timeout=120)
    (folder / ".venv").symlink_to(Path(sys.prefix))
    return folder


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    env.update({"PORT": str(free_port()), "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        terminal.ctrl_c()


def log_in(url: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/admin/login/", timeout=10)
    answer = session.post(
        f"{url}/admin/login/",
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": csrf_from(page.text),
            "next": "/admin/",
        },
        timeout=10,
    )
    assert answer.ok and "/admin/login/" not in answer.url, "admin login with the printed password failed"
    return session


def run_block(code: str, clone: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["sh", "-ec", code], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{code}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_the_walkthrough_works_word_for_word_on_a_fresh_clone(
    clone: Path, shell_env: dict[str, str], terminals: list[Terminal]
) -> None:
    text = walkthrough()
    steps = blocks(text)
    assert any(lang == "sh" and "make run" in code for lang, code in steps), "the walk-through starts no site"
    url = session = None
    outputs: list[str] = []
    for lang, code in steps:
        if lang == "python":
            name = code.splitlines()[0].removeprefix("# ").strip()
            assert re.fullmatch(r"[\w/]+\.py", name), f"a python block that names no file: {name!r}"
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_text(code)
        elif lang == "sh" and code.strip().startswith("make run"):
            proc = subprocess.Popen(
                ["sh", "-ec", code],
                cwd=clone,
                env=shell_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            terminal = Terminal(proc)
            terminals.append(terminal)
            ready = terminal.read_until(r"^Ready: (http://\S+)/admin/$", timeout=240)
            url = ready.group(1)
            password = terminal.read_until(r"^Log in as admin with password (\S+) \(shown this once", 10).group(1)
            terminal.read_until(r"^Stop: Ctrl-C stops", 10)
            assert url == f"http://127.0.0.1:{shell_env['PORT']}"
            # The deploy of `make run` gave the worker the sandbox's client credentials.
            assert "Set HELLO_CLIENT_ID, HELLO_CLIENT_SECRET of worker hello" in terminal.output
            session = log_in(url, password)
        elif lang == "sh" and "oauth start" in code:
            assert session is not None, "oauth start before make run"
            proc = subprocess.Popen(
                ["sh", "-ec", code],
                cwd=clone,
                env=shell_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                lines = []
                while not (lines and lines[-1].startswith("http")):
                    line = proc.stdout.readline()
                    assert line, f"no authorization URL:\n{''.join(lines)}\n{proc.stderr.read()}"
                    lines.append(line)
                # The URL of the port `make run` chose: PUBLIC_URL came from .env, not the default 8000.
                assert lines[-1].startswith(f"{url}/sandbox/o/authorize/?"), lines[-1]
                callback = consent(session, lines[-1].strip())
                assert session.get(callback, timeout=20).status_code == 200
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:  # sh and the command it started
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            assert proc.returncode == 0, err
            assert "Connected helloAuth." in out
        elif lang == "sh":
            outputs.append(run_block(code, clone, shell_env))
    assert url, "make run never said where it serves"
    result = "\n".join(outputs)
    assert '"Item 2"' in result and '"Item 20"' in result and '"Item 1"' not in result, result
    assert "succeeded" in result, result
    print(result)  # with -s: what a reader sees
