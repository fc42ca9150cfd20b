#!/usr/bin/python3
"""make_corpus.py - writes the seed corpus of the request fuzzer (test/fuzz/corpus/).

Each seed is one request frame without its 4-byte size prefix, as
fuzz_request.c reads it: request header (v1, or v2 with tagged fields in
flexible versions), then the body. The bytes are built here from the Kafka
protocol rules (Apache Kafka's clients/src/main/resources/common/message/*.json
and the record batch v2 layout), independently of our C codecs, so a seed that
our decoder refuses points at a schema bug rather than agreeing with it.

Seeds: every API the broker serves at its lowest version, first flexible
version, highest version and one in between, a few variants (null arrays,
tagged fields, several record batches), and some malformed frames
(truncations, bad counts, bad tags, corrupt batches).

    /usr/bin/python3 test/fuzz/make_corpus.py        # rewrites test/fuzz/corpus/
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
DISPATCH = os.path.join(HERE, "..", "..", "broker", "dispatch.c")

# API key: (name, lowest, highest, first flexible) that this generator knows how
# to build. Checked against broker/dispatch.c below.
APIS = {
    0: ("produce", 3, 9, 9),
    1: ("fetch", 4, 13, 12),
    2: ("list_offsets", 0, 7, 6),
    3: ("metadata", 0, 12, 9),
    18: ("api_versions", 0, 3, 3),
    19: ("create_topics", 0, 7, 5),
    20: ("delete_topics", 0, 6, 4),
}
KAPI = {"PRODUCE": 0, "FETCH": 1, "LIST_OFFSETS": 2, "METADATA": 3, "API_VERSIONS": 18,
        "CREATE_TOPICS": 19, "DELETE_TOPICS": 20}

# ---- CRC-32C (Castagnoli) ----
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ---- primitive writers ----


def uvarint(n):
    assert n >= 0
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint(n):
    return uvarint((n << 1) ^ (n >> 63) if n < 0 else n << 1)


class W:
    """Appends Kafka wire types; `flex` selects compact encodings and tags."""

    def __init__(self, flex):
        self.flex = flex
        self.b = bytearray()

    def raw(self, b):
        self.b += b
        return self

    def i8(self, v): return self.raw(struct.pack(">b", v))
    def i16(self, v): return self.raw(struct.pack(">h", v))
    def i32(self, v): return self.raw(struct.pack(">i", v))
    def i64(self, v): return self.raw(struct.pack(">q", v))
    def boolean(self, v): return self.i8(1 if v else 0)
    def uuid(self, u): return self.raw(u)

    def string(self, s):
        if s is None:
            return self.raw(uvarint(0)) if self.flex else self.i16(-1)
        b = s.encode()
        return self.raw(uvarint(len(b) + 1) + b) if self.flex else self.i16(len(b)).raw(b)

    def bytes_(self, b):
        if b is None:
            return self.raw(uvarint(0)) if self.flex else self.i32(-1)
        return self.raw(uvarint(len(b) + 1) + b) if self.flex else self.i32(len(b)).raw(b)

    def array(self, items, fn):
        """fn(w, item) writes one element; items None writes a null array."""
        if items is None:
            return self.raw(uvarint(0)) if self.flex else self.i32(-1)
        self.raw(uvarint(len(items) + 1) if self.flex else struct.pack(">i", len(items)))
        for it in items:
            fn(self, it)
        return self

    def tags(self, tagged=None):
        """The tagged-fields section of a struct (flexible only): {tag: bytes}."""
        if not self.flex:
            return self
        tagged = tagged or {}
        self.raw(uvarint(len(tagged)))
        for t in sorted(tagged):
            self.raw(uvarint(t) + uvarint(len(tagged[t])) + tagged[t])
        return self


def header(key, version, flex, corr=7, client_id="fuzz-seed"):
    w = W(False)  # client_id is a classic nullable string even in header v2
    w.i16(key).i16(version).i32(corr).string(client_id)
    if flex:
        w.raw(uvarint(0))
    return bytes(w.b)

# ---- record batches (magic 2) ----


def record(offset_delta, ts_delta, key, value, headers=()):
    body = bytearray()
    body += struct.pack(">b", 0)
    body += varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk + varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


def batch(base_offset=0, records=((None, b"hello"),), attributes=0, magic=2, producer_id=-1, ts=1700000000000,
          corrupt_crc=False, headers=()):
    recs = b"".join(record(i, i, k, v, headers) for i, (k, v) in enumerate(records))
    n = len(records)
    after_crc = struct.pack(">hiqqqhii", attributes, max(n - 1, 0), ts, ts + max(n - 1, 0), producer_id, -1, -1,
                            n) + recs
    crc = crc32c(after_crc) ^ (1 if corrupt_crc else 0)
    after_len = struct.pack(">ibI", 0, magic, crc) + after_crc
    return struct.pack(">qi", base_offset, len(after_len)) + after_len


def topic_id(n):
    return bytes([n] * 16)

# ---- request bodies, after Kafka's *Request.json ----


def produce(v, w, records=None, txn=None, acks=-1):
    if records is None:
        records = batch(records=((b"k1", b"v1"), (None, b"v2")))
    if v >= 3:
        w.string(txn)
    w.i16(acks).i32(30000)

    def part(w, p):
        w.i32(p[0]).bytes_(p[1]).tags()

    def topic(w, t):
        w.string(t[0]).array(t[1], part).tags()
    w.array([("fuzz-topic", [(0, records), (1, None)])], topic)
    return w.tags()


def fetch(v, w, cluster_id=None, forgotten=True):
    if v <= 14:
        w.i32(-1)                       # ReplicaId
    w.i32(500).i32(1)                   # MaxWaitMs, MinBytes
    if v >= 3:
        w.i32(52428800)                 # MaxBytes
    if v >= 4:
        w.i8(0)                         # IsolationLevel
    if v >= 7:
        w.i32(0).i32(-1)                # SessionId, SessionEpoch

    def part(w, p):
        w.i32(p)
        if v >= 9:
            w.i32(-1)                   # CurrentLeaderEpoch
        w.i64(0)                        # FetchOffset
        if v >= 12:
            w.i32(-1)                   # LastFetchedEpoch
        if v >= 5:
            w.i64(-1)                   # LogStartOffset
        w.i32(1048576)                  # PartitionMaxBytes
        w.tags()

    def topic(w, t):
        if v <= 12:
            w.string(t)
        else:
            w.uuid(topic_id(1))
        w.array([0, 1], part).tags()
    w.array(["fuzz-topic"], topic)
    if v >= 7:
        def forgot(w, t):
            if v <= 12:
                w.string(t)
            else:
                w.uuid(topic_id(2))
            w.array([3, 4], lambda w, p: w.i32(p)).tags()
        w.array(["old-topic"] if forgotten else [], forgot)
    if v >= 11:
        w.string("rack-a")              # RackId
    tagged = {}
    if cluster_id is not None and v >= 12:
        tagged[0] = W(True).string(cluster_id).b  # ClusterId, tag 0
    return w.tags(tagged)


def list_offsets(v, w):
    w.i32(-1)                           # ReplicaId
    if v >= 2:
        w.i8(0)                         # IsolationLevel

    def part(w, p):
        w.i32(p[0])
        if v >= 4:
            w.i32(-1)                   # CurrentLeaderEpoch
        w.i64(p[1])                     # Timestamp (-1 latest, -2 earliest)
        if v == 0:
            w.i32(1)                    # MaxNumOffsets
        w.tags()

    def topic(w, t):
        w.string(t).array([(0, -1), (1, -2), (2, 1700000000000)], part).tags()
    w.array(["fuzz-topic"], topic)
    if v >= 10:
        w.i32(30000)
    return w.tags()


def metadata(v, w, topics=("fuzz-topic", "other"), auto_create=True):
    def topic(w, t):
        if v >= 10:
            w.uuid(bytes(16))           # TopicId
        w.string(t).tags()
    w.array(None if topics is None else list(topics), topic)
    if v >= 4:
        w.boolean(auto_create)
    if 8 <= v <= 10:
        w.boolean(False)
    if v >= 8:
        w.boolean(True)
    return w.tags()


def api_versions(v, w, name="kafscale-fuzz", version="1.0"):
    if v >= 3:
        w.string(name).string(version)
    return w.tags()


def create_topics(v, w, validate_only=False):
    def assignment(w, a):
        w.i32(a[0]).array(a[1], lambda w, b: w.i32(b)).tags()

    def config(w, c):
        w.string(c[0]).string(c[1]).tags()

    def topic(w, t):
        w.string(t[0]).i32(t[1]).i16(t[2]).array(t[3], assignment).array(t[4], config).tags()
    w.array([
        ("fuzz-new", 3, 1, [], [("retention.ms", "3600000"), ("cleanup.policy", None)]),
        ("fuzz-assigned", -1, -1, [(0, [1]), (1, [1])], []),
    ], topic)
    w.i32(30000)
    if v >= 1:
        w.boolean(validate_only)
    return w.tags()


def delete_topics(v, w):
    if v <= 5:
        w.array(["fuzz-old", "fuzz-new"], lambda w, s: w.string(s))
    else:
        def topic(w, t):
            w.string(t[0]).uuid(t[1]).tags()
        w.array([("fuzz-old", bytes(16)), (None, topic_id(9))], topic)
    w.i32(30000)
    return w.tags()


BODIES = {0: produce, 1: fetch, 2: list_offsets, 3: metadata, 18: api_versions, 19: create_topics,
          20: delete_topics}


def request(key, v, **kw):
    flex = v >= APIS[key][3]
    return header(key, v, flex) + bytes(BODIES[key](v, W(flex), **kw).b)


def check_dispatch():
    """Warns when broker/dispatch.c serves other versions than this file knows."""
    try:
        src = open(DISPATCH).read()
    except OSError:
        return
    for m in re.finditer(r"\{KAPI_(\w+),\s*(\d+),\s*(\d+),\s*(\d+|KV_MAX)", src):
        key = KAPI.get(m.group(1))
        if key is None:
            print("make_corpus: dispatch.c serves %s, which this generator does not know" % m.group(1),
                  file=sys.stderr)
            continue
        name, lo, hi, flex = APIS[key]
        got = (int(m.group(2)), int(m.group(3)), 127 if m.group(4) == "KV_MAX" else int(m.group(4)))
        if got != (lo, hi, flex):
            print("make_corpus: %s: dispatch.c has versions %d..%d (flexible %d), generator %d..%d (%d)"
                  % (name, got[0], got[1], got[2], lo, hi, flex), file=sys.stderr)


def seeds():
    out = {}
    for key, (name, lo, hi, flex) in sorted(APIS.items()):
        versions = sorted({lo, (lo + hi) // 2, min(flex, hi), hi} | ({flex - 1} if lo < flex <= hi else set()))
        for v in versions:
            out["%s-v%d" % (name, v)] = request(key, v)

    # variants of valid requests
    two = batch(0, ((None, b"a"),)) + batch(1, ((b"k", b"b" * 40), (None, None)), headers=((b"h", b"x"),))
    out["produce-v9-two-batches"] = request(0, 9, records=two)
    out["produce-v3-two-batches"] = request(0, 3, records=two)
    out["produce-v8-txn-acks0"] = request(0, 8, txn="txn-1", acks=0)
    out["produce-v9-compressed-attr"] = request(0, 9, records=batch(attributes=1))
    out["fetch-v12-cluster-id-tag"] = request(1, 12, cluster_id="kafscale")
    out["fetch-v13-no-forgotten"] = request(1, 13, forgotten=False)
    out["metadata-v1-null-topics"] = request(3, 1, topics=None)
    out["metadata-v9-all-topics"] = request(3, 9, topics=None, auto_create=False)
    out["metadata-v0-empty"] = request(3, 0, topics=())
    out["create_topics-v7-validate"] = request(19, 7, validate_only=True)
    out["api_versions-v3-empty-names"] = request(18, 3, name="", version="")

    # malformed frames
    p9 = request(0, 9)
    out["bad-produce-truncated"] = p9[: len(p9) - 20]
    out["bad-header-only"] = header(0, 9, True)
    out["bad-short-header"] = header(3, 1, False)[:5]
    out["bad-unknown-key"] = header(999, 0, False) + b"\x00" * 8
    out["bad-version-too-high"] = header(0, 10, True) + request(0, 9)[len(header(0, 9, True)):]
    out["bad-metadata-negative-count"] = header(3, 1, False) + struct.pack(">i", -2) + b"\x00" * 8
    out["bad-create-topics-huge-count"] = header(19, 4, False) + struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 16
    out["bad-api-versions-string-overflow"] = header(18, 3, True) + b"\xff\xff\xff\xff\x0f" + b"x" * 8
    out["bad-fetch-tags-descending"] = (header(1, 12, True)
                                        + bytes(fetch(12, W(True)).b)[:-1] + b"\x02\x05\x00\x01\x00")
    out["bad-fetch-tag-count-huge"] = header(1, 13, True) + bytes(fetch(13, W(True)).b)[:-1] + b"\xff\xff\x03"
    out["bad-produce-batch-crc"] = request(0, 9, records=batch(corrupt_crc=True))
    out["bad-produce-batch-magic1"] = request(0, 9, records=batch(magic=1))
    long_len = bytearray(batch())
    struct.pack_into(">i", long_len, 8, 100000)
    out["bad-produce-batch-length"] = request(0, 7, records=bytes(long_len))
    out["bad-produce-batch-then-garbage"] = request(0, 9, records=batch() + b"\x00\x01garbage")
    out["bad-null-topic-name"] = header(2, 1, False) + struct.pack(">iih", -1, 1, -1) + b"\x00" * 8
    return out


def main():
    check_dispatch()
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    all_seeds = seeds()
    for name, data in sorted(all_seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    total = sum(len(d) for d in all_seeds.values())
    print("make_corpus: %d seeds, %d bytes in %s" % (len(all_seeds), total, os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
