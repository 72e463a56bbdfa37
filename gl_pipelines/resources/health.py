"""The answer every resource gives to "can I reach you?", used by sensors and the demo."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthStatus:
    ok: bool
    endpoint: str
    detail: str
    latency_s: float
