"""deploy/mosquitto-edgepipe.conf composes with Debian's stock mosquitto.conf.

Debian's main file sets pid_file, persistence, persistence_location and log_dest, then
includes /etc/mosquitto/conf.d. A snippet that sets persistence_location again stops
mosquitto 2.0 from starting ("Duplicate persistence_location value"), and deploy/install.sh
then aborted with the broker down. The test runs a real mosquitto on a main file like
Debian's with the snippet in its include_dir.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from edgepipe.delivery.broker import broker_answers, find_mosquitto, free_port

pytestmark = pytest.mark.integration

SNIPPET = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto-edgepipe.conf"


def _debian_like(tmp_path: Path, port: int) -> Path:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "persist").mkdir()
    snippet = SNIPPET.read_text(encoding="utf-8")
    loopback = r"^listener 1883 127\.0\.0\.1$"
    local = re.sub(loopback, f"listener {port} 127.0.0.1", snippet, flags=re.M)
    assert local != snippet, "the snippet's loopback listener line moved"
    (tmp_path / "conf.d" / "edgepipe.conf").write_text(local, encoding="utf-8")
    main = tmp_path / "mosquitto.conf"
    main.write_text(
        f"""# as /etc/mosquitto/mosquitto.conf of Debian's mosquitto 2.0.11
pid_file {tmp_path}/mosquitto.pid

persistence true
persistence_location {tmp_path}/persist/

log_dest file {tmp_path}/mosquitto.log

include_dir {tmp_path}/conf.d
# not in Debian's file: started as root, mosquitto would switch to the user mosquitto,
# who cannot write this test's directory
user root
""",
        encoding="utf-8",
    )
    return main


def test_snippet_starts_with_debian_main_config_and_persists(tmp_path: Path) -> None:
    port = free_port()
    main = _debian_like(tmp_path, port)
    proc = subprocess.Popen(
        [find_mosquitto(), "-c", str(main)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not broker_answers("127.0.0.1", port, timeout=0.5):
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                log_file = tmp_path / "mosquitto.log"
                log = log_file.read_text(errors="replace") if log_file.exists() else ""
                pytest.fail(f"mosquitto exited {proc.returncode}: {out}{log}")
            assert time.monotonic() < deadline, "mosquitto did not answer within 10 s"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
    # persistence is on, at the main file's location, and autosave is the snippet's
    assert (tmp_path / "persist" / "mosquitto.db").is_file()


def test_snippet_leaves_the_location_to_the_main_config() -> None:
    text = SNIPPET.read_text(encoding="utf-8")
    active = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert "persistence_location" not in active and "pid_file" not in active
    assert "persistence" in active  # a bool: repeating it is allowed, and it must be on
    assert re.search(r"^listener \d+ 127\.0\.0\.1$", text, flags=re.M)  # loopback only
