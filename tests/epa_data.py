"""Where the real EPA files live: $GL_EPA_DATA_DIR, else ../shared/data/epa beside the checkout, else the
workspace's /work/shared/data/epa (CI tests a clean clone that may sit elsewhere on the same machine)."""

from __future__ import annotations

import os
from pathlib import Path

CANDIDATES = [
    os.environ.get("GL_EPA_DATA_DIR"),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "epa",
    "/work/shared/data/epa",
]


def epa_data_dir() -> Path:
    """The first candidate folder holding the EPA data (its README.md), else the first candidate (tests skip)."""
    folders = [Path(candidate) for candidate in CANDIDATES if candidate]
    return next((folder for folder in folders if (folder / "README.md").exists()), folders[0])


EPA_DIR = epa_data_dir()
