"""One shape for every benchmark's figures: printed as a ratio to an in-run baseline, kept for JSON.

A benchmark module exposes ``DATABASES`` (which of "sqlite" and "postgres" it runs on) and
``run(ctx)``; it calls ``ctx.figure(...)`` once per figure. `python -m benchmarks` runs each
module in its own process on a fresh database, collects the figures, prints them as a table and
writes them all as JSON (``.run/bench.json`` unless ``--json`` says otherwise).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    bench: str
    database: str
    name: str
    ratio: float
    baseline: str
    target: float | None = None
    # "max": the ratio must stay at or under the target (a cost); "min": at or over it (a rate).
    sense: str = "max"
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio <= self.target if self.sense == "max" else self.ratio >= self.target

    def line(self) -> str:
        verdict = {None: "", True: "  ok", False: "  MISSED"}[self.met]
        goal = ""
        if self.target is not None:
            goal = f" (target {'<=' if self.sense == 'max' else '>='} {self.target:g}x)"
        text = f"  {self.name}: {self.ratio:.2f}x {self.baseline}{goal}{verdict}"
        return text + (f"\n      {self.detail}" if self.detail else "")


@dataclass
class Context:
    """What a benchmark module gets: its scale, its database's name, and where figures go."""

    bench: str
    database: str
    quick: bool
    out: Path
    figures: list[Figure] = field(default_factory=list)

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def figure(
        self,
        name: str,
        *,
        ratio: float,
        baseline: str,
        target: float | None = None,
        sense: str = "max",
        detail: str = "",
        **extra: Any,
    ) -> Figure:
        fig = Figure(self.bench, self.database, name, ratio, baseline, target, sense, detail, extra)
        self.figures.append(fig)
        print(fig.line(), flush=True)
        with self.out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(fig)) + "\n")
        return fig

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)


def read(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def markdown(figures: list[Figure]) -> str:
    rows = ["| benchmark | database | figure | ratio | baseline | target |", "|---|---|---|---|---|---|"]
    for fig in figures:
        target = "" if fig.target is None else f"{'≤' if fig.sense == 'max' else '≥'} {fig.target:g}x"
        mark = {None: "", True: " ✓", False: " ✗"}[fig.met]
        rows.append(
            f"| {fig.bench} | {fig.database} | {fig.name} | {fig.ratio:.2f}x | {fig.baseline} | {target}{mark} |"
        )
    return "\n".join(rows)


def environment() -> dict[str, str]:
    return {"cpus": str(os.cpu_count()), "python": os.sys.version.split()[0]}
