"""A Modbus TCP server we did not write: libmodbus (Debian's libmodbus-dev), compiled at test time.

`scripts/ci-services` installs libmodbus-dev and gcc; where they are missing and we run as root the
fixture installs them itself, else the tests skip saying what to install. The server
(`modbus_libmodbus/server.c`) answers from a register map file and logs every request it gets, so a
test can state exactly which requests our client sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent / "modbus_libmodbus" / "server.c"


def _pkg_config(*args: str) -> str | None:
    if not shutil.which("pkg-config"):
        return None
    done = subprocess.run(["pkg-config", *args, "libmodbus"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _ensure_libmodbus() -> None:
    """libmodbus-dev and gcc, installed with apt if missing (as scripts/ci-services does)."""
    if _pkg_config("--exists") is not None and shutil.which("gcc"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("libmodbus-dev, gcc and pkg-config are needed: run scripts/ci-services as root")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "libmodbus-dev", "gcc", "pkg-config"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {done.stderr[-2000:]}")


@pytest.fixture(scope="session")
def libmodbus_server_binary(tmp_path_factory) -> tuple[Path, str]:
    """(the compiled server, libmodbus's version as pkg-config reports it)."""
    _ensure_libmodbus()
    binary = tmp_path_factory.mktemp("libmodbus") / "server"
    flags = (_pkg_config("--cflags") or "").split() + (_pkg_config("--libs") or "").split()
    done = subprocess.run(
        ["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE), *flags], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot compile {SOURCE.name} against libmodbus: {done.stderr[-2000:]}")
    return binary, _pkg_config("--modversion") or "unknown"


@dataclass
class LibmodbusServer:
    port: int
    log: Path

    def requests(self) -> list[tuple[int, int, int]]:
        """Every request received so far, as (function code, address, count)."""
        lines = self.log.read_text().split("\n") if self.log.exists() else []
        return [tuple(map(int, line.split())) for line in lines if line]

    def clear(self) -> None:
        self.log.write_text("")


@contextmanager
def libmodbus_server(binary: Path, map_lines: list[str], folder: Path) -> Iterator[LibmodbusServer]:
    """The libmodbus server serving `map_lines` (see server.c) on a free loopback port until the block ends."""
    map_file, log = folder / "map.txt", folder / "requests.log"
    map_file.write_text("\n".join(map_lines) + "\n")
    log.write_text("")
    proc = subprocess.Popen([str(binary), str(map_file), str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        if not line.startswith("listening "):
            proc.kill()
            raise RuntimeError(f"libmodbus server did not start: {line!r} {proc.stderr.read().decode()[-2000:]}")
        yield LibmodbusServer(int(line.split()[1]), log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
