"""`edgepipe import`, `edgepipe capture info` and `edgepipe replay` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgepipe.app.capture_commands import parse_time
from edgepipe.app.cli import main
from edgepipe.delivery import alert_from_json

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_import_pcap_then_info_then_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "cap"
    pcap = DATA / "c37118" / "C37.118_1PMU_TCP.pcap"
    assert main(["import", "pcap", str(pcap), "--out", str(cap), "--name", "field"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["c37118_frames"] == 252 and summary["streams"] == ["field/241"]
    assert main(["capture", "info", str(cap), "--json"]) == 0
    info, total = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert info["rows"] == 252 and info["stream"] == "field/241" and info["asset"]
    assert total == {"capture": str(cap), "streams": 1, "rows": 252, "truncated_segments": 0,
                     "corrupt_batches": 0, "corrupt_rows": 0, "status_events": 0}  # fmt: skip
    assert main(["capture", "info", str(cap)]) == 0
    text = capsys.readouterr().out
    assert "field/241" in text and "gaps" in text and "channels:" in text
    assert main(["replay", str(cap), "--fast"]) == 0
    for line in capsys.readouterr().out.splitlines():  # every stdout line is an alert
        alert_from_json(line.encode())


def _imported(tmp_path: Path) -> tuple[Path, Path]:
    """A capture imported from the one-PMU TCP pcap, and its one stream segment."""
    cap = tmp_path / "cap"
    assert main(["import", "pcap", str(DATA / "c37118" / "C37.118_1PMU_TCP.pcap"),
                 "--out", str(cap)]) == 0  # fmt: skip
    (seg,) = (cap / "streams").glob("*/*.arrows")
    return cap, seg


def test_a_capture_altered_on_disk_is_reported_and_its_rows_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import pyarrow as pa

    cap, seg = _imported(tmp_path)
    first = pa.ipc.open_stream(seg.read_bytes()).read_next_batch()
    value = first.column("V1LPM.mag").to_numpy()[0]  # a voltage of the first row
    data = bytearray(seg.read_bytes())
    at = data.index(np.float64(value).tobytes())
    data[at + 5] ^= 0x10  # one bit, as a failing card or a bad copy would flip it
    seg.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["capture", "info", str(cap), "--json"]) == 3
    total = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert total["corrupt_batches"] == 1 and total["corrupt_rows"] == first.num_rows
    assert total["rows"] == 252 - first.num_rows
    assert main(["capture", "info", str(cap)]) == 3
    assert f"corrupt: {seg}: batch 0 ({first.num_rows} rows)" in capsys.readouterr().out
    assert main(["replay", str(cap), "--fast"]) == 0
    assert "altered since it was written" in capsys.readouterr().err
    # a header altered: that segment cannot be read at all, the capture still can
    data[: data.index(b"edgepipe.stream") + 4] = bytes(data.index(b"edgepipe.stream") + 4)
    seg.write_bytes(bytes(data))
    assert main(["capture", "info", str(cap), "--json"]) == 3
    total = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert total["corrupt_batches"] == 1 and total["rows"] == 0
    assert main(["capture", "info", str(cap)]) == 3
    text = capsys.readouterr().out
    assert f"corrupt: {seg}: unreadable segment header" in text and "digest" not in text


def test_import_refuses_to_overwrite_a_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = tmp_path / "cap"
    pcap = str(DATA / "c37118" / "C37.118_1PMU_UDP.pcap")
    assert main(["import", "pcap", pcap, "--out", str(cap)]) == 0
    assert main(["import", "pcap", pcap, "--out", str(cap)]) == 1
    assert "already holds a capture" in capsys.readouterr().err


def test_import_comtrade_keeps_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "rec"
    cfg = DATA / "comtrade" / "sample_ascii.cfg"
    assert main(["import", "comtrade", str(cfg), "--out", str(cap)]) == 0
    assert json.loads(capsys.readouterr().out)["streams"] == ["sample_ascii/samples"]
    assert main(["capture", "info", str(cap), "--json"]) == 0
    info, total = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert info["channels"] == ["IA", "IB", "IC", "3I0"] and info["rows"] == 40
    assert total["truncated_segments"] == 0 and total["rows"] == 40


def test_bad_inputs_give_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capture", "info", str(tmp_path)]) == 1
    assert "not a capture" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "nothing")]) == 1
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a pcap at all")
    assert main(["import", "pcap", str(junk), "--out", str(tmp_path / "c")]) == 1
    assert "pcap" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing half-written left behind
    bad_cfg = tmp_path / "bad.cfg"
    bad_cfg.write_text("x\n")
    assert main(["import", "comtrade", str(bad_cfg), "--out", str(tmp_path / "d")]) == 1


def test_replay_time_arguments() -> None:
    assert parse_time("+1.5", 10_000_000_000) == 11_500_000_000
    assert parse_time("123", 0) == 123
    assert parse_time("2026-11-26T12:00:00Z", 0) == 1_795_694_400_000_000_000
    with pytest.raises(ValueError):
        parse_time("yesterday", 0)


def test_capture_section_of_the_config(tmp_path: Path) -> None:
    from edgepipe.app.config import parse_config
    from edgepipe.core import ConfigError

    base = {"site": "s", "sources": {"p": {"type": "pmu", "url": "tcp://127.0.0.1:1", "idcode": 1}}}
    cfg = parse_config({**base, "capture": {"dir": "rec", "flush_s": 2.0}}, base_dir=tmp_path)
    assert cfg.capture is not None and cfg.capture.dir == str(tmp_path / "rec")
    assert parse_config({**base, "capture": {"dir": "rec", "enabled": False}}).capture is None
    assert parse_config(base).capture is None
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "capture": {"flush_s": 60, "colour": 1}})
    keys = {i.key for i in err.value.issues}
    assert "capture.colour" in keys


def test_missing_or_unreadable_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, path in [("pcap", tmp_path / "nope.pcap"), ("pcap", tmp_path),
                       ("comtrade", tmp_path / "nope.cfg"), ("comtrade", tmp_path)]:  # fmt: skip
        assert main(["import", kind, str(path), "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"edgepipe: {path}: cannot read") and err.count("\n") == 1, err
        assert not (tmp_path / "o").exists()


def test_a_damaged_pcap_is_imported_up_to_the_damage_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray((DATA / "c37118" / "C37.118_1PMU_TCP.pcap").read_bytes())
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(data[: len(data) // 2])
    assert main(["import", "pcap", str(bad), "--out", str(tmp_path / "half")]) == 3
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert 0 < summary["rows"] < 252 and "cut short" in summary["damage"]
    assert f"edgepipe: warning: {bad}: cut short or corrupt at byte" in err
    data[24 + 8 : 24 + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    bad.write_bytes(data)
    assert main(["import", "pcap", str(bad), "--out", str(tmp_path / "len")]) == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 0 and "at byte 24 (record 1)" in summary["damage"]


def test_a_truncated_comtrade_dat_is_imported_up_to_the_cut_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.cfg").write_bytes((DATA / "comtrade" / "sample_ascii.cfg").read_bytes())
    (tmp_path / "r.dat").write_bytes((DATA / "comtrade" / "sample_ascii.dat").read_bytes()[:700])
    assert main(["import", "comtrade", str(tmp_path / "r.cfg"), "--out", str(tmp_path / "c")]) == 3
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["samples"] == 22 and "line 23: last sample cut short" in summary["damage"]
    assert f"edgepipe: warning: {tmp_path / 'r.dat'}: line 23" in err
    (tmp_path / "r.dat").write_bytes(b"")
    assert main(["import", "comtrade", str(tmp_path / "r.cfg"), "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err == f"edgepipe: {tmp_path / 'r.dat'}: no complete sample: the file is empty; " \
        "the .cfg announces 40\n"  # fmt: skip


def test_capture_info_json_always_prints_a_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap, seg = _imported(tmp_path)
    capsys.readouterr()
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size * 2 // 3])  # the one batch is cut
    assert main(["capture", "info", str(cap), "--json"]) == 0
    (total,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert total["truncated_segments"] == 1 and total["streams"] == 0 and total["rows"] == 0
    assert main(["capture", "info", str(cap)]) == 0
    text = capsys.readouterr().out
    assert "1 segment(s) cut short" in text and "rows after it are lost" in text
    assert "no stream has a complete batch" in text
