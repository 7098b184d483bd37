"""COMTRADE (IEEE C37.111) parsing on the reference samples, and the DFT phasor import."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from adapters.c37118.testing import RecordingSink
from adapters.capture.comtrade import parse_cfg, parse_dat, read_record
from adapters.capture.importers import import_comtrade
from edgepipe.core import ChannelKind, ProtocolError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "comtrade"
NS = 1_000_000_000


def _ns(*args: int, us: int = 0) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS + us * 1000


def test_reference_data_is_there() -> None:
    assert (DATA / "sample_ascii.cfg").is_file(), f"missing reference data in {DATA}"


def test_ascii_2013_channels_scaling_and_utc_times() -> None:
    rec = read_record(DATA / "sample_ascii.cfg")
    cfg = rec.config
    assert (cfg.station, cfg.device, cfg.revision, cfg.file_type) == (
        "SMARTSTATION", "IED123", 2013, "ASCII")  # fmt: skip
    assert [a.name for a in cfg.analogs] == ["IA", "IB", "IC", "3I0"]
    assert cfg.digitals == ("51A", "51B", "51C", "51N")
    assert rec.analogs.shape == (40, 4) and rec.digitals.shape == (40, 4)
    # First row "1,0,-83,68,7,-8,...": a * x + b with a = 0.1138916015625, b = 0.0569458...
    a, b = 0.1138916015625, 0.05694580078125
    np.testing.assert_allclose(rec.analogs[0], np.array([-83, 68, 7, -8]) * a + b)
    # 12/01/2011 05:55:30.075011 local, time code -5h30: UTC is 5 h 30 later.
    assert rec.times_ns[0] == _ns(2011, 1, 12, 11, 25, 30, us=75011)
    assert np.all(np.diff(rec.times_ns) - NS / 1200 <= 1)  # 1200 samples/s


@pytest.mark.parametrize(
    ("text", "binary"),
    [
        ("sample_ascii.cfg", "sample_ascii.cff"),
        ("sample_iso8859-1.cfg", "sample_iso8859-1_bin.cfg"),
    ],
    ids=["cff", "binary"],
)
def test_the_same_record_in_other_encodings_has_the_same_samples(text: str, binary: str) -> None:
    a, b = read_record(DATA / text), read_record(DATA / binary)
    assert [c.name for c in a.config.analogs] == [c.name for c in b.config.analogs]
    np.testing.assert_allclose(a.analogs, b.analogs, atol=0.02)  # ASCII rounds to 0.1 A
    np.testing.assert_array_equal(a.digitals, b.digitals)


def test_iso8859_station_name_is_decoded() -> None:
    assert read_record(DATA / "sample_iso8859-1.cfg").config.station == "Estação de Medição"


def test_binary_1999_and_float32_2013() -> None:
    rec = read_record(DATA / "sample_bin.cfg")
    assert rec.config.revision == 1999 and rec.config.file_type == "BINARY"
    assert [c.unit for c in rec.config.analogs] == ["kV"] * 4 and rec.digitals.shape == (5, 16)
    assert rec.times_ns[1] - rec.times_ns[0] == round(NS / 15360)
    f32 = read_record(DATA / "sample_float32.cff")
    assert f32.config.file_type == "FLOAT32" and f32.analogs.shape == (301, 1)
    assert f32.times_ns[0] == _ns(2021, 2, 17, 17, 37, 12) + 422_969_065  # ns precision kept
    assert f32.times_ns[100] - f32.times_ns[0] == NS  # 100 samples/s


def test_missing_samples_become_nan() -> None:
    cfg_text = (DATA / "sample_ascii.cfg").read_text(encoding="utf-8")
    rec = parse_dat(parse_cfg(cfg_text), (DATA / "sample_ascii_missing.dat").read_bytes())
    assert np.isnan(rec.analogs).any() and not np.isnan(rec.analogs).all()
    bin_cfg = (DATA / "sample_bin.cfg").read_text(encoding="latin-1")
    rec = parse_dat(parse_cfg(bin_cfg), (DATA / "sample_bin_missing.dat").read_bytes())
    assert np.isnan(rec.analogs).any()


def test_malformed_files_raise_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_cfg("station,dev,1999\nnot,a,count\n")
    cfg = parse_cfg((DATA / "sample_bin.cfg").read_text(encoding="latin-1"))
    with pytest.raises(ProtocolError, match="no complete sample: record 1 cut short"):
        parse_dat(cfg, b"\x00" * 7)


# -- synthetic records: a known three-phase waveform, every file type and revision ------------

FS, F_SIG, VRMS = 1200, 60.5, 63_500.0


def _synthetic(tmp_path: Path, revision: int, file_type: str) -> Path:
    n = FS  # one second
    t = np.arange(n) / FS
    start_frac = 0.25  # first sample at .250000 past a whole UTC second
    waves = [
        np.sqrt(2) * VRMS * np.cos(2 * np.pi * F_SIG * (t + start_frac) + 0.3 - k * 2 * np.pi / 3)
        for k in range(3)
    ]
    a = 2.0 if file_type != "FLOAT32" else 1.0  # volts per count
    raw = np.rint(np.column_stack(waves) / a) if file_type != "FLOAT32" else np.column_stack(waves)
    date = "07/01/17" if revision == 1991 else "01/07/2017"  # 1991: mm/dd/yy
    lines = [f"SUB,REL,{revision}" if revision != 1991 else "SUB,REL", "3,3A,0D"]
    for i, ph in enumerate("ABC"):
        row = f"{i + 1},V{ph},{ph},line,V,{a},0,0,-2147483647,2147483647"
        lines.append(row + (",1,1,P" if revision != 1991 else ""))
    lines += ["60", "1", f"{FS},{n}", f"{date},10:00:00.250000", f"{date},10:00:00.500000",
              file_type]  # fmt: skip
    if revision != 1991:
        lines.append("1")
    if revision == 2013:
        lines += ["0,0", "0,0"]
    cfg = tmp_path / f"rec{revision}{file_type}.cfg"
    cfg.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")
    stamps = np.rint(np.arange(n) * 1e6 / FS).astype(int)
    if file_type == "ASCII":
        body = "".join(f"{i + 1},{stamps[i]},{','.join(str(int(v)) for v in raw[i])}\r\n"
                       for i in range(n))  # fmt: skip
        data = body.encode()
    else:
        vt = {"BINARY32": "<i4", "FLOAT32": "<f4"}[file_type]
        rec = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", vt, (3,))])
        arr = np.zeros(n, dtype=rec)
        arr["n"], arr["t"], arr["a"] = np.arange(1, n + 1), stamps, raw
        data = arr.tobytes()
    cfg.with_suffix(".dat").write_bytes(data)
    return cfg


@pytest.mark.parametrize(
    ("revision", "file_type"),
    [(1991, "ASCII"), (1999, "BINARY32"), (2013, "FLOAT32")],
    ids=["1991-ascii", "1999-binary32", "2013-float32"],
)
def test_dft_phasors_frequency_and_rocof(tmp_path: Path, revision: int, file_type: str) -> None:
    rec = read_record(_synthetic(tmp_path, revision, file_type))
    assert rec.times_ns[0] == _ns(2017, 7, 1, 10, 0, 0, us=250_000)
    sink = RecordingSink()
    stats = import_comtrade(rec, "relay", sink)
    assert stats.streams == ["relay/samples", "relay/phasors"]
    info = sink.infos[1]
    assert [c.name for c in info.channels] == [
        "VA.mag", "VA.ang", "VB.mag", "VB.ang", "VC.mag", "VC.ang", "freq", "rocof"]  # fmt: skip
    assert info.rate_hz == 60 and info.channels[0].kind is ChannelKind.MAGNITUDE
    ph = sink.batches[1]
    slots = (ph.times_ns % NS) * 60 / NS
    assert np.abs(slots - np.rint(slots)).max() < 1e-6  # on the 60/s reporting grid (UTC)
    mid = slice(5, -5)
    # One-cycle DFT off nominal (+0.5 Hz) ripples by ~0.3 %; C37.118.1 TVE budget is 1 %.
    np.testing.assert_allclose(ph.values[mid, 0], VRMS, rtol=0.005)
    np.testing.assert_allclose(ph.values[mid, 6], F_SIG, atol=0.01)
    np.testing.assert_allclose(ph.values[mid, 7], 0.0, atol=0.5)
    # The angle at t advances by 2 pi (f - f0) t against the UTC-synchronised 60 Hz cosine.
    t = (ph.times_ns - _ns(2017, 7, 1, 10, 0, 0)) / NS
    expected = np.angle(np.exp(1j * (2 * np.pi * (F_SIG - 60) * t + 0.3)))
    err = np.angle(np.exp(1j * (ph.values[:, 1] - expected)))
    assert np.abs(err[mid]).max() < 0.01


def _ascii_pair(tmp_path: Path, cfg: str | None = None, dat: bytes | None = None) -> Path:
    text = (DATA / "sample_ascii.cfg").read_text(encoding="latin-1")
    (tmp_path / "r.cfg").write_text(text if cfg is None else cfg, encoding="latin-1")
    data = (DATA / "sample_ascii.dat").read_bytes()
    (tmp_path / "r.dat").write_bytes(data if dat is None else dat)
    return tmp_path / "r.cfg"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: "", r"r\.cfg: line 1: expected 'station_name,rec_dev_id,rev_year'.*end of"),
        (lambda t: t.replace("8,4A,4D", "8,5A,3D"),
         r"r\.cfg: line 7: expected analog channel 5 of 5 .* found 5: '1,51A,,Line123,0'"),
        (lambda t: t.replace("8,4A,4D", "9,4A,4D"),
         r"r\.cfg: line 2: expected TT = ##A \+ ##D, found 9 channels but 4A \+ 4D"),
        (lambda t: t[:200], r"r\.cfg: line 5: expected analog channel 3 of 4 .* found 6: "),
        (lambda t: "\n".join(t.splitlines()[:12]),
         r"r\.cfg: line 13: expected sampling rate 1 'samp,endsamp'.*end of"),
        (lambda t: t.replace("ASCII", "TEXT"), r"r\.cfg: line 16: expected file type .*'TEXT'"),
        (lambda t: t.replace("12/01/2011,05:55:30.075011", "12/01/2011,noon"),
         r"r\.cfg: line 14: expected first sample time stamp 'dd/mm/yyyy,hh:mm:ss\.ssssss'"),
    ],
    ids=["empty", "wrong-count", "total", "truncated", "no-rates", "file-type", "time"],
)  # fmt: skip
def test_a_bad_cfg_names_the_file_the_line_and_what_the_layout_expects(
    tmp_path: Path, edit: object, message: str
) -> None:
    text = (DATA / "sample_ascii.cfg").read_text(encoding="latin-1")
    assert callable(edit)
    path = _ascii_pair(tmp_path, cfg=edit(text))
    with pytest.raises(ProtocolError, match=message) as err:
        read_record(path)
    assert "C37.111-1999/2013 .cfg layout" in str(err.value)


def test_a_truncated_ascii_dat_keeps_the_complete_samples_and_says_where(tmp_path: Path) -> None:
    data = (DATA / "sample_ascii.dat").read_bytes()
    rec = read_record(_ascii_pair(tmp_path, dat=data[:700]))
    assert rec.analogs.shape == (22, 4) and len(rec.times_ns) == 22
    assert rec.damage is not None and rec.damage.startswith(f"{tmp_path / 'r.dat'}: line 23: ")
    assert "announces 40" in rec.damage
    whole = read_record(DATA / "sample_ascii.cfg")
    np.testing.assert_array_equal(rec.analogs, whole.analogs[:22])
    assert whole.damage is None
    # Cut at a line end: nothing is cut short, but the .cfg announced more samples.
    at_line = data[: data.index(b"\n", 700) + 1]
    rec = read_record(_ascii_pair(tmp_path, dat=at_line))
    assert rec.damage is not None and "ends after sample 23; the .cfg announces 40" in rec.damage


def test_a_truncated_binary_dat_keeps_the_whole_records(tmp_path: Path) -> None:
    (tmp_path / "b.cfg").write_bytes((DATA / "sample_bin.cfg").read_bytes())
    (tmp_path / "b.dat").write_bytes((DATA / "sample_bin.dat").read_bytes()[:80])
    rec = read_record(tmp_path / "b.cfg")
    assert len(rec.times_ns) == 4 and rec.damage is not None
    assert "record 5 cut short (8 of 18 bytes, at byte 72)" in rec.damage


def test_bad_dat_contents_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=r"r\.dat: no complete sample: the file is empty"):
        read_record(_ascii_pair(tmp_path, dat=b""))
    lines = (DATA / "sample_ascii.dat").read_bytes().split(b"\n")
    lines[4] = b"5,75833,182x,-119,-7,56,0,0,0,0"
    with pytest.raises(ProtocolError, match=r"r\.dat: line 5: field 3 \(analog\)"):
        read_record(_ascii_pair(tmp_path, dat=b"\n".join(lines)))
    lines = (DATA / "sample_ascii.dat").read_bytes().split(b"\n")
    lines[4] = b"5,75833,1"
    with pytest.raises(ProtocolError, match=r"r\.dat: line 5: expected 10 fields"):
        read_record(_ascii_pair(tmp_path, dat=b"\n".join(lines)))


def test_an_empty_record_gives_no_phasors_not_an_index_error() -> None:
    from adapters.capture.phasors import estimate

    got = estimate(np.zeros(0, np.int64), np.zeros((0, 2)), 60.0, 60.0)
    assert got.phasors.shape == (0, 2)
