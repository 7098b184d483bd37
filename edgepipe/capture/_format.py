"""The capture format: one directory, Arrow IPC stream segments, readable with polars.

Layout of a capture directory::

    CAPTURE/
      capture.json                      manifest: format, edgepipe version, site, sources
      events.jsonl                      source status changes, one JSON object a line
      streams/<stream>/<t0>-<n>.arrows  segments of one stream (Arrow IPC stream format)
      raw/<source>/<t0>-<n>.arrows      raw wire frames of one source (``raw_frames = true``)

A segment holds rows of one stream with one channel layout. Columns, in this order:

=============  =======  ==============================================================
``time_ns``    int64    event time, ns since the UNIX epoch
``quality``    uint16   ``edgepipe.core.Quality`` mask
``seq``        int64    number of the ``SampleBatch`` the row came in (capture-wide)
``device``     bool     time stamped by the device (else on receipt)
<channel>      float64  one column per ``ChannelInfo``, NaN when absent
=============  =======  ==============================================================

Schema metadata: ``edgepipe.format`` (``"2"``), ``edgepipe.version``,
``edgepipe.stream`` (the ``StreamInfo`` as JSON) and ``edgepipe.source`` (the source's
config as JSON). Batches are flushed every ``flush_s`` seconds, so a crash loses at most
that much of the open segment; a segment without its end-of-stream marker still reads up
to its last complete batch. ``pl.read_ipc_stream(path)`` reads a segment.

A raw segment holds the exact frames one source received, in arrival order:

=============  =======  ==============================================================
``time_ns``    int64    receipt time (wall clock), ns since the UNIX epoch
``seq``        int64    capture-wide number of the hand-over the frame came in
``frame``      binary   the whole frame as received (C37.118.2: SYNC to CHK, clause 6.2)
=============  =======  ==============================================================

Schema metadata: ``edgepipe.format``, ``edgepipe.version``, ``edgepipe.raw`` (the source
name) and ``edgepipe.source`` (its config as JSON; ``type`` says the protocol).

Format 2 adds, to every record batch's custom metadata, ``edgepipe.digest``: a BLAKE2b
digest (16 bytes, hex) of the batch's values (``batch_digest``). A reader recomputes it
and leaves out a batch whose bytes were altered (disk or copy corruption), counting it;
format 1 segments carry none and read unchecked. Readers that do not know the key
(polars, pyarrow) ignore it.
"""

from __future__ import annotations

__all__ = [
    "DIGEST_KEY",
    "FORMAT_VERSION",
    "FIXED_COLUMNS",
    "RAW_COLUMNS",
    "batch_digest",
    "info_from_json",
    "info_to_json",
    "raw_schema",
    "safe_name",
    "schema_for",
]

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from edgepipe import __version__
from edgepipe.core import ChannelInfo, ChannelKind, StreamInfo

FORMAT_VERSION = "2"  # 2: a digest per record batch (DIGEST_KEY); 1 reads unchecked
DIGEST_KEY = "edgepipe.digest"
FIXED_COLUMNS = ("time_ns", "quality", "seq", "device")
RAW_COLUMNS = ("time_ns", "seq", "frame")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(stream: str) -> str:
    """A file-system safe directory name for a stream id ("sim/1" -> "sim~1")."""
    return _UNSAFE.sub("~", stream)


def info_to_json(info: StreamInfo) -> str:
    return json.dumps(
        {
            "stream": info.stream,
            "source": info.source,
            "asset": info.asset,
            "rate_hz": info.rate_hz,
            "nominal_hz": info.nominal_hz,
            "idcode": info.idcode,
            "kind": info.kind,
            "params": [[k, v] for k, v in info.params],
            "channels": [
                {
                    "name": c.name,
                    "kind": c.kind.value,
                    "unit": c.unit,
                    "phasor": c.phasor,
                    "phase": c.phase,
                    "nominal": c.nominal,
                }
                for c in info.channels
            ],
        },
        sort_keys=True,
    )


def info_from_json(text: str | bytes) -> StreamInfo:
    d = json.loads(text)
    channels = tuple(
        ChannelInfo(
            c["name"],
            ChannelKind(c["kind"]),
            c["unit"],
            c["phasor"],
            c["phase"],
            float(c["nominal"]),
        )
        for c in d["channels"]
    )
    return StreamInfo(
        stream=d["stream"], source=d["source"], asset=d["asset"], channels=channels,
        rate_hz=float(d["rate_hz"]), nominal_hz=float(d["nominal_hz"]), idcode=int(d["idcode"]),
        kind=str(d.get("kind", "")),
        params=tuple((str(k), float(v)) for k, v in d.get("params", [])),
    )  # fmt: skip


def schema_for(info: StreamInfo, source_config: Mapping[str, Any] | None = None) -> pa.Schema:
    """The Arrow schema of a segment of ``info``, with its self-describing metadata."""
    fields = [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("quality", pa.uint16(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("device", pa.bool_(), nullable=False),
    ]
    for c in info.channels:
        meta = {"kind": c.kind.value, "unit": c.unit, "phasor": c.phasor, "phase": c.phase}
        fields.append(pa.field(c.name, pa.float64(), metadata=meta))
    metadata = {
        "edgepipe.format": FORMAT_VERSION,
        "edgepipe.version": __version__,
        "edgepipe.stream": info_to_json(info),
        "edgepipe.source": json.dumps(dict(source_config or {}), sort_keys=True, default=str),
    }
    return pa.schema(fields, metadata=metadata)


def raw_schema(source: str, source_config: Mapping[str, Any] | None = None) -> pa.Schema:
    """The Arrow schema of a raw-frame segment of ``source``, with its metadata."""
    fields = [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("frame", pa.binary(), nullable=False),
    ]
    metadata = {
        "edgepipe.format": FORMAT_VERSION,
        "edgepipe.version": __version__,
        "edgepipe.raw": source,
        "edgepipe.source": json.dumps(dict(source_config or {}), sort_keys=True, default=str),
    }
    return pa.schema(fields, metadata=metadata)


def batch_digest(batch: pa.RecordBatch) -> str:
    """BLAKE2b-128 (hex) of ``batch``'s values, column by column: the same for a batch
    written and for the batch read back, whatever buffers pyarrow chose for either."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{batch.num_rows}:{batch.num_columns}".encode())
    for col in batch.columns:
        h.update(f"|{col.type}:{col.null_count}|".encode())
        if pa.types.is_binary(col.type):
            _, offset_buf, data = col.buffers()
            ends = np.frombuffer(offset_buf, dtype=np.int32)
            offsets = ends[col.offset : col.offset + len(col) + 1].astype(np.int64)
            h.update((offsets - offsets[0]).tobytes())
            if data is not None:
                h.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
        else:
            h.update(np.ascontiguousarray(col.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()
