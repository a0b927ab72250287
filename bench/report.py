"""The benchmark report: rows of figures measured in one run, written as Markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the report.  ``verdict`` is PASS/FAIL for rows with a target, else ""."""

    section: str
    measurement: str
    database: str
    value: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    quick: bool
    started: float = field(default_factory=time.time)
    rows: list[Row] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(
            f"  {row.section} | {row.measurement} | {row.database} | {row.value} | {row.ratio}"
            f"{' | ' + row.target + ' ' + row.verdict if row.target else ''}",
            flush=True,
        )
        return row

    def notice(self, text: str) -> None:
        self.notices.append(text)
        print(f"NOTICE: {text}", flush=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "quick": self.quick,
            "wall_seconds": round(self.wall_seconds, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "notices": self.notices,
            "rows": [asdict(r) for r in self.rows],
        }

    def markdown(self) -> str:
        head = "quick smoke run (sizes too small for the targets)" if self.quick else "full run"
        lines = [
            f"# django-pinterest-capi benchmarks — {self.as_dict()['started']}",
            "",
            f"{head}; wall time {self.wall_seconds:.0f} s; {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}; load average at the end "
            f"{os.getloadavg()[0]:.1f} (other processes share the CPUs: ratios measured side by "
            "side stay comparable, absolute figures move with it)",
            "",
            "| section | measurement | database | value | ratio | target | result |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            cells = [r.section, r.measurement, r.database, r.value, r.ratio, r.target, r.verdict]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        if self.notices:
            lines += ["", "Notices:", ""] + [f"- {n}" for n in self.notices]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path | None = None) -> tuple[Path, Path]:
        """``<dir>/<UTC timestamp>[-quick].md`` and ``.json``; returns both paths."""
        directory = directory or RESULTS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.started))
        stem = directory / (stamp + ("-quick" if self.quick else ""))
        md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
        md.write_text(self.markdown())
        js.write_text(json.dumps(self.as_dict(), indent=2))
        return md, js


def verdict(ok: bool, quick: bool) -> str:
    """PASS/FAIL, or "(quick)" in a smoke run whose sizes are too small to judge a target."""
    if quick:
        return "n/a (quick)"
    return "PASS" if ok else "FAIL"
