"""Hostile input (issue 18): how fast implausible input is refused, against the path that accepted it.

- `alias_bomb_refusal_s`: `load_site_config` on a 352-byte YAML alias bomb (9 levels of 9 aliases,
  387 million nodes expanded). Baseline in the same run: the old path (`yaml.safe_load`, pydantic,
  the error quoting the input) on the 7-level bomb (4.8 million nodes; the issue measured 10.8 s and a
  480-million-character message for the 9-level one), with its message length.
- `dahs_future_hours_refusal_s`: `parse_dahs_csv` on a DAHS file of `--hours` consecutive hours starting
  2026-11-01 (the later ones in the future), refused at the first hour more than a day ahead.
  Baseline: the same parse with the future bound lifted (what accepted the whole file before).
- `dahs_future_vs_accept`: refusal ÷ baseline wall time.

Run: `python bench/hostile_input.py [--hours 100000]`. Prints one JSON object per figure per line and
writes them to bench/results/hostile_input.jsonl.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import yaml
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from gl_demo_plant.cems_dahs import dahs_lines  # noqa: E402
from gl_demo_plant.cems_model import cems_hours  # noqa: E402
from gl_pipelines.cems import dahs  # noqa: E402
from gl_pipelines.config import SiteConfig, SiteConfigError, load_site_config  # noqa: E402

LST = -6


def bomb(levels: int) -> str:
    names = "abcdefghijklmnop"[:levels]
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    return "\n".join([*lines, f"opcua: *{names[-1]}"]) + "\n"


def old_config_path(text: str) -> int:
    """The loader before issue 18: safe_load, validate, quote each error's input in full."""
    raw = yaml.safe_load(text)
    try:
        SiteConfig.model_validate(raw)
    except ValidationError as exc:
        return len("; ".join(f"{e['loc']} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=100_000)
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.yaml"
        path.write_text(bomb(9))
        began = time.perf_counter()
        try:
            load_site_config(path)
        except SiteConfigError as exc:
            message = str(exc)
        refused = time.perf_counter() - began
        figures.append(
            {
                "figure": "alias_bomb_refusal_s",
                "value": round(refused, 4),
                "unit": "s",
                "file_bytes": path.stat().st_size,
                "message_chars": len(message),
            }
        )
        small = bomb(7)
        began = time.perf_counter()
        chars = old_config_path(small)
        figures.append(
            {
                "figure": "alias_bomb_7_levels_old_path_s",
                "value": round(time.perf_counter() - began, 4),
                "unit": "s",
                "file_bytes": len(small),
                "message_chars": chars,
            }
        )

    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    frame = cems_hours("B1", start, start + timedelta(hours=args.hours))
    data = ("\n".join(dahs_lines(frame, LST)) + "\n").encode()
    began = time.perf_counter()
    try:
        dahs.parse_dahs_csv(data, "future.csv", LST, {"B1"})
        error = ""
    except dahs.DahsFormatError as exc:
        error = str(exc)
    refusal = time.perf_counter() - began
    with mock.patch.object(dahs, "MAX_HOURS_AHEAD", timedelta(days=365 * 1000)):
        began = time.perf_counter()
        rows = len(dahs.parse_dahs_csv(data, "future.csv", LST, {"B1"}))
        accepted = time.perf_counter() - began
    common = {"hours": args.hours, "file_bytes": len(data)}
    figures += [
        {
            "figure": "dahs_future_hours_refusal_s",
            "value": round(refusal, 4),
            "unit": "s",
            **common,
            "refused_at": error.split(":")[0],
        },
        {"figure": "dahs_future_hours_accept_s", "value": round(accepted, 4), "unit": "s", **common, "rows": rows},
        {"figure": "dahs_future_vs_accept", "value": round(refusal / accepted, 5), "unit": "ratio", **common},
    ]
    emit("hostile_input", figures)


if __name__ == "__main__":
    main()
