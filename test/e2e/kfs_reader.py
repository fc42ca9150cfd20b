#!/usr/bin/python3
"""kfs_reader.py - an independent reader of Kafscale segment (.kfs) and index
(.index) objects, in pure Python (stdlib only), written from DESIGN.md
"Storage formats" and the Kafka record batch v2 layout, not from our C code.
Tests use it to check what the flusher wrote (a file store or an S3 bucket).

    import kfs_reader as kr
    seg = kr.parse_segment(data)       # dict, raises ValueError
    idx = kr.parse_index(data)         # dict, raises ValueError
    kr.check_index(seg, idx)           # the index belongs to the segment
    for rec in kr.batch_records(seg["batches"][0]["bytes"]): ...
    kr.parse_key("default/orders/0/segment-00000000000000000042.kfs")

Every inconsistency raises ValueError with a message that says what and
where. Run as a script to print a summary:
    /usr/bin/python3 kfs_reader.py FILE.kfs [FILE.index]

Layout (all big-endian):
  .kfs   header 32: "KAFS" | version u16 = 1 | flags u16 | base offset i64 |
                    message count i32 | created ms i64 | reserved u32
         Kafka v2 record batches, offsets ascending
         footer 16: CRC-32C of the batches u32 | last offset i64 | "END!"
  .index header 16: "IDX\\0" | version u16 = 1 | entry count i32 |
                    interval i32 | reserved u16
         entries 12: offset i64 | position i32 (byte position in the .kfs)
An index entry marks the first batch and every batch boundary where at least
`interval` messages passed since the previous entry.
"""
import gzip
import re
import struct
import sys

SEG_MAGIC = b"KAFS"
FOOTER_MAGIC = b"END!"
IDX_MAGIC = b"IDX\x00"
HEADER_SIZE = 32
FOOTER_SIZE = 16
IDX_HEADER_SIZE = 16
IDX_ENTRY_SIZE = 12
KNOWN_FLAGS = 0x0000  # bit 0 (LZ4 body) is reserved, not readable yet
BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12

# ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) ----


def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_table()


def crc32c(data, crc=0):
    """CRC-32C of data; pass a previous result as crc to continue it."""
    t = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in memoryview(data).cast("B"):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---- record batches ----


def parse_batch_header(data, pos=0, limit=None):
    """Reads the v2 batch header at data[pos:]; the batch must end by limit
    (default len(data)). Returns a dict; ValueError when it is not a whole
    v2 batch."""
    limit = len(data) if limit is None else limit
    left = limit - pos
    if left < LOG_OVERHEAD + 5:
        raise ValueError("batch at %d: %d bytes left, not even a batch header" % (pos, left))
    base_offset, batch_len, leader_epoch, magic = struct.unpack_from(">qiib", data, pos)
    if magic != 2:
        raise ValueError("batch at %d: magic %d, want 2" % (pos, magic))
    size = LOG_OVERHEAD + batch_len
    if batch_len < BATCH_HEADER_SIZE - LOG_OVERHEAD or size > left:
        raise ValueError("batch at %d: length %d does not fit the %d bytes left" % (pos, batch_len, left))
    (crc, attributes, last_offset_delta, base_ts, max_ts, producer_id, producer_epoch, base_sequence,
     record_count) = struct.unpack_from(">Ihiqqqhii", data, pos + 17)
    if record_count < 0 or last_offset_delta < 0:
        raise ValueError("batch at %d: record count %d / last offset delta %d" % (pos, record_count,
                                                                                  last_offset_delta))
    if base_offset < 0:
        raise ValueError("batch at %d: negative base offset %d" % (pos, base_offset))
    return {
        "position": pos, "base_offset": base_offset, "length": size, "leader_epoch": leader_epoch,
        "crc": crc, "attributes": attributes, "last_offset_delta": last_offset_delta,
        "last_offset": base_offset + last_offset_delta, "base_timestamp": base_ts,
        "max_timestamp": max_ts, "producer_id": producer_id, "producer_epoch": producer_epoch,
        "base_sequence": base_sequence, "record_count": record_count,
    }


def _varint(buf, i):
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("record: truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("record: varint too long")
    return (result >> 1) ^ -(result & 1), i


def batch_records(batch):
    """Decodes the records of one v2 batch (bytes): yields dicts offset,
    timestamp, key, value, headers. Uncompressed and gzip batches only."""
    h = parse_batch_header(batch)
    codec = h["attributes"] & 7
    body = bytes(batch[BATCH_HEADER_SIZE:h["length"]])
    if codec == 1:
        body = gzip.decompress(body)
    elif codec != 0:
        raise ValueError("batch at offset %d: compression codec %d not supported by this reader"
                         % (h["base_offset"], codec))
    i = 0
    for _ in range(h["record_count"]):
        length, i = _varint(body, i)
        end = i + length
        if length < 0 or end > len(body):
            raise ValueError("record: length %d past the batch" % length)
        i += 1  # attributes
        ts_delta, i = _varint(body, i)
        off_delta, i = _varint(body, i)
        klen, i = _varint(body, i)
        key = None if klen < 0 else body[i:i + klen]
        i += max(klen, 0)
        vlen, i = _varint(body, i)
        value = None if vlen < 0 else body[i:i + vlen]
        i += max(vlen, 0)
        nh, i = _varint(body, i)
        headers = []
        for _ in range(nh):
            hk, i = _varint(body, i)
            k = body[i:i + hk]
            i += hk
            hv, i = _varint(body, i)
            v = None if hv < 0 else body[i:i + hv]
            i += max(hv, 0)
            headers.append((k.decode("utf-8", "replace"), v))
        if i != end:
            raise ValueError("record at offset %d: %d bytes, fields took %d"
                             % (h["base_offset"] + off_delta, length, length - (end - i)))
        yield {"offset": h["base_offset"] + off_delta, "timestamp": h["base_timestamp"] + ts_delta,
               "key": key, "value": value, "headers": headers}
    if i != len(body):
        raise ValueError("batch at offset %d: %d bytes after the last record" % (h["base_offset"],
                                                                               len(body) - i))


# ---- segment ----


def parse_segment(data, verify_batch_crcs=True):
    """Parses and checks a whole .kfs. Returns a dict: version, flags,
    base_offset, message_count, created_ms, crc, last_offset, size,
    max_timestamp, batches (each a parse_batch_header dict plus "bytes",
    a memoryview of the batch). ValueError on any inconsistency."""
    data = bytes(data)
    n = len(data)
    if n < HEADER_SIZE + FOOTER_SIZE:
        raise ValueError("segment: %d bytes, shorter than header + footer (48)" % n)
    magic, version, flags, base_offset, message_count, created_ms, reserved = struct.unpack_from(
        ">4sHHqiqI", data, 0)
    if magic != SEG_MAGIC:
        raise ValueError("segment: header magic %r, want %r" % (magic, SEG_MAGIC))
    if version != 1:
        raise ValueError("segment: version %d, want 1" % version)
    if flags & ~KNOWN_FLAGS:
        raise ValueError("segment: unknown flags 0x%04x (this reader reads plain batches only; "
                         "0x0001 = LZ4 body is reserved)" % flags)
    crc, last_offset, fmagic = struct.unpack_from(">Iq4s", data, n - FOOTER_SIZE)
    if fmagic != FOOTER_MAGIC:
        raise ValueError("segment: footer magic %r, want %r (truncated?)" % (fmagic, FOOTER_MAGIC))
    body_end = n - FOOTER_SIZE
    if body_end == HEADER_SIZE:
        raise ValueError("segment: no batches")
    body_crc = crc32c(memoryview(data)[HEADER_SIZE:body_end])
    if body_crc != crc:
        raise ValueError("segment: CRC-32C of the batches is 0x%08x, footer says 0x%08x" % (body_crc, crc))
    batches = []
    pos = HEADER_SIZE
    count = 0
    max_ts = -1
    mv = memoryview(data)
    while pos < body_end:
        b = parse_batch_header(data, pos, body_end)
        if batches and b["base_offset"] <= batches[-1]["last_offset"]:
            raise ValueError("segment: batch at %d has base offset %d, not above the previous last offset %d"
                             % (pos, b["base_offset"], batches[-1]["last_offset"]))
        b["bytes"] = mv[pos:pos + b["length"]]
        if verify_batch_crcs:
            got = crc32c(mv[pos + 21:pos + b["length"]])
            if got != b["crc"]:
                raise ValueError("segment: batch at %d (offset %d): CRC-32C 0x%08x, header says 0x%08x"
                                 % (pos, b["base_offset"], got, b["crc"]))
        count += b["record_count"]
        max_ts = max(max_ts, b["max_timestamp"])
        batches.append(b)
        pos += b["length"]
    if batches[0]["base_offset"] != base_offset:
        raise ValueError("segment: header base offset %d, first batch %d" % (base_offset,
                                                                          batches[0]["base_offset"]))
    if count != message_count:
        raise ValueError("segment: header message count %d, batches hold %d" % (message_count, count))
    if batches[-1]["last_offset"] != last_offset:
        raise ValueError("segment: footer last offset %d, last batch ends at %d"
                         % (last_offset, batches[-1]["last_offset"]))
    return {
        "version": version, "flags": flags, "base_offset": base_offset, "message_count": message_count,
        "created_ms": created_ms, "reserved": reserved, "crc": crc, "last_offset": last_offset,
        "size": n, "max_timestamp": max_ts, "batches": batches,
    }


# ---- index ----


def parse_index(data):
    """Parses and checks a .index. Returns a dict: version, count, interval,
    entries (list of (offset, position)). ValueError on any inconsistency."""
    data = bytes(data)
    n = len(data)
    if n < IDX_HEADER_SIZE:
        raise ValueError("index: %d bytes, shorter than its 16-byte header" % n)
    magic, version, count, interval, reserved = struct.unpack_from(">4sHiiH", data, 0)
    if magic != IDX_MAGIC:
        raise ValueError("index: magic %r, want %r" % (magic, IDX_MAGIC))
    if version != 1:
        raise ValueError("index: version %d, want 1" % version)
    if count < 1:
        raise ValueError("index: entry count %d (a segment has at least one batch)" % count)
    if n != IDX_HEADER_SIZE + count * IDX_ENTRY_SIZE:
        raise ValueError("index: %d bytes, but %d entries need %d" % (n, count,
                                                                    IDX_HEADER_SIZE + count * IDX_ENTRY_SIZE))
    if interval <= 0:
        raise ValueError("index: interval %d, must be positive" % interval)
    entries = []
    for i in range(count):
        off, pos = struct.unpack_from(">qi", data, IDX_HEADER_SIZE + i * IDX_ENTRY_SIZE)
        if off < 0 or pos < HEADER_SIZE:
            raise ValueError("index: entry %d (offset %d, position %d) out of range" % (i, off, pos))
        if entries and (off <= entries[-1][0] or pos <= entries[-1][1]):
            raise ValueError("index: entry %d (offset %d, position %d) not above entry %d (%d, %d)"
                             % (i, off, pos, i - 1, entries[-1][0], entries[-1][1]))
        entries.append((off, pos))
    return {"version": version, "count": count, "interval": interval, "reserved": reserved,
            "entries": entries}


def expected_index_entries(seg, interval):
    """The (offset, position) entries the interval rule gives for a parsed
    segment."""
    out = []
    since = 0
    for b in seg["batches"]:
        if not out or since >= interval:
            out.append((b["base_offset"], b["position"]))
            since = 0
        since += b["record_count"]
    return out


def check_index(seg, idx):
    """Checks that a parsed index belongs to a parsed segment: every entry
    points at a batch start whose base offset is the entry's offset, and the
    entries are exactly those of the interval rule. ValueError otherwise."""
    starts = {b["position"]: b["base_offset"] for b in seg["batches"]}
    for i, (off, pos) in enumerate(idx["entries"]):
        if pos not in starts:
            raise ValueError("index: entry %d position %d is not a batch start" % (i, pos))
        if starts[pos] != off:
            raise ValueError("index: entry %d says offset %d, the batch at %d starts at %d"
                             % (i, off, pos, starts[pos]))
    want = expected_index_entries(seg, idx["interval"])
    if want != idx["entries"]:
        raise ValueError("index: entries %r differ from the interval-%d rule %r"
                         % (idx["entries"][:8], idx["interval"], want[:8]))


def lookup(idx, offset):
    """The greatest entry (offset, position) with entry offset <= offset;
    None when offset is below the first entry."""
    best = None
    for e in idx["entries"]:
        if e[0] <= offset:
            best = e
        else:
            break
    return best


# ---- keys ----

_KEY_RE = re.compile(r"^(?P<ns>.+)/(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>0|[1-9][0-9]*)/"
                     r"segment-(?P<base>[0-9]{20})\.(?P<ext>kfs|index)$")


def segment_key(ns, topic, partition, base_offset, ext="kfs"):
    """{ns}/{topic}/{partition}/segment-{base_offset:020d}.{ext}"""
    return "%s/%s/%d/segment-%020d.%s" % (ns, topic, partition, base_offset, ext)


def parse_key(key):
    """Takes a segment key apart: dict ns, topic, partition, base_offset,
    ext. ValueError when it is not a canonical segment key."""
    m = _KEY_RE.match(key)
    if not m:
        raise ValueError("not a segment key: %r" % key)
    base = int(m.group("base"))
    part = int(m.group("partition"))
    if base > 2 ** 63 - 1 or part > 2 ** 31 - 1:
        raise ValueError("not a segment key (number out of range): %r" % key)
    return {"ns": m.group("ns"), "topic": m.group("topic"), "partition": part, "base_offset": base,
            "ext": m.group("ext")}


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: kfs_reader.py FILE.kfs [FILE.index]\n")
        return 2
    try:
        with open(argv[1], "rb") as f:
            seg = parse_segment(f.read())
        print("segment: version %d flags 0x%04x offsets %d..%d, %d messages in %d batches, created %d"
              % (seg["version"], seg["flags"], seg["base_offset"], seg["last_offset"], seg["message_count"],
                 len(seg["batches"]), seg["created_ms"]))
        if len(argv) == 3:
            with open(argv[2], "rb") as f:
                idx = parse_index(f.read())
            check_index(seg, idx)
            print("index: %d entries, interval %d: %r" % (idx["count"], idx["interval"], idx["entries"]))
    except ValueError as e:
        print("ERROR: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
