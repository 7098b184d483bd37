"""`edgepipe replay`, `edgepipe import pcap|comtrade` and `edgepipe capture info`.

Output a command produces goes to stdout (alerts as JSON lines, the info summary);
logs and the progress bar go to stderr.
"""

from __future__ import annotations

__all__ = ["add_parsers", "import_to_capture", "parse_time"]

import argparse
import asyncio
import importlib.util
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgepipe.app.config import AppConfig, load_config
from edgepipe.app.replay import ReplayOptions, run_replay, terminal_progress
from edgepipe.capture import (
    CaptureConfig,
    CaptureWriter,
    Recorder,
    read_capture,
    summarize,
    summarize_raw,
)
from edgepipe.core import (
    ConfigError,
    EdgepipeError,
    SampleBatch,
    SourceStatus,
    StreamInfo,
    VirtualClock,
)
from edgepipe.core.source import Sink
from edgepipe.delivery import format_rfc3339_ns, parse_rfc3339_ns

_NS = 1_000_000_000
_NO_RETENTION = 1 << 60  # an import keeps everything it writes


def parse_time(text: str, start_ns: int) -> int:
    """RFC 3339 (``2026-11-26T12:00:00Z``), integer ns since the epoch, or ``+S``
    seconds after the start of the capture."""
    if text.startswith("+"):
        return start_ns + round(float(text[1:]) * _NS)
    if text.isdigit():
        return int(text)
    return parse_rfc3339_ns(text)


class _Discard(Sink):
    def on_stream(self, info: StreamInfo) -> None: ...
    def on_batch(self, batch: SampleBatch) -> None: ...
    def on_status(self, status: SourceStatus) -> None: ...


def import_to_capture(out: Path, source: dict[str, Any], feed: Callable[[Sink], Any]) -> Any:
    """Open a new capture at ``out``, let ``feed`` report into it, close it."""
    if (out / "capture.json").exists():
        raise EdgepipeError(f"{out} already holds a capture; give a new --out")
    config = CaptureConfig(dir=str(out), segment_s=1e12, segment_bytes=256 << 20,
                           max_bytes=_NO_RETENTION, max_age_s=1e12)  # fmt: skip
    created = not out.exists()
    writer = CaptureWriter(config, VirtualClock(), "", {source["name"]: source})
    writer.open()
    try:
        result = feed(Recorder(_Discard(), writer, VirtualClock()))
    except BaseException:
        writer.close()
        if created:  # a failed import leaves nothing half-written behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    writer.close()
    return result


def _cmd_import_pcap(args: argparse.Namespace) -> int:
    from adapters.capture.importers import import_pcap  # noqa: PLC0415 - keeps --help fast

    profile = None
    if args.profile is not None:
        from adapters.modbus.profile import load_profile  # noqa: PLC0415

        profile = load_profile(args.profile)
    name = args.name or args.file.stem
    source = {"name": name, "type": "pcap", "file": str(args.file),
              "profile": str(args.profile or "")}  # fmt: skip
    stats = import_to_capture(args.out, source, lambda s: import_pcap(args.file, name, s, profile))
    print(json.dumps({"out": str(args.out), "streams": stats.streams, "rows": stats.rows,
                      "packets": stats.packets, "damage": stats.damage,
                      "flows": stats.flows, "c37118_flows": stats.c37118_flows,
                      "c37118_frames": stats.c37118_frames,
                      "c37118_bad_frames": stats.c37118_bad_frames,
                      "c37118_unknown_config": stats.c37118_unknown_config,
                      "other_flows": stats.other_flows, "other_flow_keys": stats.other_flow_keys,
                      "non_ip_packets": stats.non_ip_packets,
                      "undecodable_packets": stats.undecodable_packets,
                      "tcp_gap_bytes": stats.tcp_gap_bytes,
                      "modbus": {k: getattr(stats.modbus, k)
                                 for k in stats.modbus.__dataclass_fields__},
                      "modbus_reads": stats.modbus_reads, "notes": stats.notes}))  # fmt: skip
    return _report_input(args.file, stats.damage, stats.notes)


#: Exit status of an import whose input was cut short or corrupt: the capture was written
#: and holds everything before the damage (the summary's ``damage`` says where).
EXIT_DAMAGED = 3


def _report_input(file: Path | None, damage: str | None, notes: list[str]) -> int:
    """One line on stderr per note, and a warning with a non-zero exit for damage."""
    name = f"{file}: " if file is not None else ""
    for note in notes:
        print(f"edgepipe: note: {name}{note}", file=sys.stderr)
    if damage is None:
        return 0
    print(f"edgepipe: warning: {name}{damage}; imported what came before it", file=sys.stderr)
    return EXIT_DAMAGED


def _cmd_import_comtrade(args: argparse.Namespace) -> int:
    from adapters.capture.comtrade import read_record  # noqa: PLC0415
    from adapters.capture.importers import import_comtrade  # noqa: PLC0415

    record = read_record(args.file)
    name = args.name or args.file.stem
    source = {"name": name, "type": "comtrade", "file": str(args.file),
              "station": record.config.station, "revision": record.config.revision}  # fmt: skip
    stats = import_to_capture(
        args.out, source, lambda s: import_comtrade(record, name, s, args.rate)
    )
    print(json.dumps({"out": str(args.out), "streams": stats.streams, "rows": stats.rows,
                      "samples": len(record.times_ns), "damage": stats.damage}))  # fmt: skip
    return _report_input(None, stats.damage, stats.notes)  # the damage names the .dat


def _cmd_capture_info(args: argparse.Namespace) -> int:
    capture = read_capture(args.capture)
    summaries = summarize(capture)
    if args.json:
        for s in summaries:
            print(json.dumps(s.to_dict()))
        for r in summarize_raw(capture):  # {"raw": source, "frames": ...}
            print(json.dumps(r.to_dict()))
        # Always last, always printed (also when no stream has a complete batch left):
        print(json.dumps({"capture": str(capture.path), "streams": len(summaries),
                          "rows": sum(s.rows for s in summaries),
                          "truncated_segments": capture.truncated_segments,
                          "corrupt_batches": capture.corrupt_batches,
                          "corrupt_rows": capture.corrupt_rows,
                          "status_events": len(capture.events)}))  # fmt: skip
        return 3 if capture.corrupt else 0
    m = capture.manifest
    sources = ", ".join(m.get("sources", {})) or "-"
    version, site = m.get("edgepipe_version", "?"), m.get("site") or "-"
    print(f"capture {capture.path}  (edgepipe {version}, site {site}, sources: {sources})")
    for s in summaries:
        span = (s.end_ns - s.start_ns) / _NS
        bad = 100.0 * s.bad_quality / max(1, s.rows)
        print(f"{s.stream}  asset {s.asset!r}  {s.rate_hz:g}/s  {s.rows} rows  "
              f"{format_rfc3339_ns(s.start_ns)} .. {format_rfc3339_ns(s.end_ns)} ({span:.3f} s)  "
              f"gaps {s.gaps} ({s.missing} frames missing)  bad quality {bad:.2f}%  "
              f"NaN values {s.nan_values}  segments {s.segments}")  # fmt: skip
        print(f"    channels: {', '.join(s.channels)}")
    if capture.truncated_segments:
        print(f"{capture.truncated_segments} segment(s) cut short: each read to its last "
              "complete batch, the rows after it are lost")  # fmt: skip
    if not summaries:
        print("no stream has a complete batch")
    for r in summarize_raw(capture):
        print(f"raw frames of {r.raw}: {r.frames} frames, {r.bytes} bytes, received "
              f"{format_rfc3339_ns(r.start_ns)} .. {format_rfc3339_ns(r.end_ns)}  "
              f"segments {r.segments}")  # fmt: skip
    print(f"{len(capture.events)} status event(s)")
    for where in capture.corrupt:
        print(f"corrupt: {where}; left out")
    return 3 if capture.corrupt else 0


def _replay_config(path: Path | None, site: str) -> AppConfig:
    if path is None:
        return AppConfig(site=site or "replay", sources=())
    return load_config(path)


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.report is not None and importlib.util.find_spec("matplotlib") is None:
        # said before the replay, not after it has run
        print("edgepipe replay: --report needs matplotlib: pip install 'edgepipe[report]'",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        capture = read_capture(args.capture)
        config = _replay_config(args.config, str(capture.manifest.get("site", "")))
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.issues)} error(s)", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue.key}: {issue.message}", file=sys.stderr)
        return 2
    if args.mqtt and config.mqtt is None:
        print("edgepipe replay: --mqtt needs a --config with [mqtt]", file=sys.stderr)
        return 2
    if not args.mqtt:
        # A replay's alerts are old news: published, they would overwrite the retained
        # state of the live site's topics. Only --mqtt sends them to the broker.
        config = replace(config, mqtt=None)
    start = min((int(p.times_ns.min()) for p in capture.parts), default=0)
    try:
        lo = parse_time(args.from_, start) if args.from_ else None
        hi = parse_time(args.to, start) if args.to else None
    except ValueError as exc:
        print(f"edgepipe replay: {exc}", file=sys.stderr)
        return 2
    if lo is not None and hi is not None and lo >= hi:
        print(f"edgepipe replay: --from {args.from_} is not before --to {args.to}", file=sys.stderr)
        return 2
    options = ReplayOptions(speed=None if args.fast else args.speed, from_ns=lo, to_ns=hi)
    if capture.truncated_segments:  # e.g. a recording cut by a power loss
        print(f"edgepipe replay: warning: {capture.truncated_segments} segment(s) of "
              f"{args.capture} cut short; replaying up to their last complete batch",
              file=sys.stderr)  # fmt: skip
    for where in capture.corrupt:  # disk or copy corruption: those rows are not replayed
        print(f"edgepipe replay: warning: {where}; left out", file=sys.stderr)
    result = asyncio.run(
        run_replay(capture, config, options, sys.stdout, terminal_progress(sys.stderr))
    )
    if result.rows == 0:
        print(f"edgepipe replay: warning: no rows replayed from {args.capture}"
              + (" in the --from/--to range" if lo is not None or hi is not None else ""),
              file=sys.stderr)  # fmt: skip
    if args.report is not None:
        from edgepipe.app.report import write_report  # noqa: PLC0415 - matplotlib is optional

        write_report(args.report, capture, result.alerts, (result.start_ns, result.end_ns))
        print(f"report written to {args.report}", file=sys.stderr)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def add_parsers(sub: Any) -> None:
    """Register ``replay``, ``import`` and ``capture`` on the CLI's subparsers."""
    rp = sub.add_parser("replay", help="replay a capture through the pipeline")
    rp.add_argument("capture", type=Path)
    rp.add_argument("--config", type=Path, default=None, help="TOML config (rules, models, mqtt)")
    rp.add_argument(
        "--mqtt", action="store_true",
        help="publish the alerts to the config's [mqtt] broker instead of printing them; "
        "they go to the config site's topics, retained: not the live site's broker",
    )  # fmt: skip
    pace = rp.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive, default=None, help="times real time")
    pace.add_argument("--fast", action="store_true", help="as fast as possible (the default)")
    rp.add_argument("--from", dest="from_", metavar="T", default=None,
                    help="RFC 3339, ns, or +S seconds")  # fmt: skip
    rp.add_argument("--to", metavar="T", default=None, help="RFC 3339, ns, or +S seconds")
    rp.add_argument("--report", type=Path, default=None, help="write an HTML report here")
    rp.set_defaults(func=_cmd_replay)

    imp = sub.add_parser("import", help="turn a pcap or a COMTRADE record into a capture")
    kinds = imp.add_subparsers(dest="import_kind", required=True, metavar="KIND")
    pcap = kinds.add_parser("pcap", help="pcap/pcapng: C37.118 (TCP, UDP), Modbus/TCP")
    pcap.add_argument("file", type=Path)
    pcap.add_argument("--out", type=Path, required=True)
    pcap.add_argument("--name", default=None, help="source name (default: the file name)")
    pcap.add_argument("--profile", type=Path, default=None, help="Modbus device profile TOML")
    pcap.set_defaults(func=_cmd_import_pcap)
    ct = kinds.add_parser("comtrade", help="IEEE C37.111 .cfg (with its .dat) or .cff")
    ct.add_argument("file", type=Path)
    ct.add_argument("--out", type=Path, required=True)
    ct.add_argument("--name", default=None)
    ct.add_argument("--rate", type=float, default=None, help="phasors/s (default: line freq)")
    ct.set_defaults(func=_cmd_import_comtrade)

    cap = sub.add_parser("capture", help="capture tools")
    cap_sub = cap.add_subparsers(dest="capture_command", required=True, metavar="ACTION")
    info = cap_sub.add_parser("info", help="sources, channels, time span, gaps, quality")
    info.add_argument("capture", type=Path)
    info.add_argument("--json", action="store_true", help="one JSON object per stream")
    info.set_defaults(func=_cmd_capture_info)
