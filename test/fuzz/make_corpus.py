#!/usr/bin/python3
"""make_corpus.py - writes the seed corpus of the request fuzzer (test/fuzz/corpus/).

Each seed is one request frame without its 4-byte size prefix, as
fuzz_request.c reads it: request header (v1, or v2 with tagged fields in
flexible versions), then the body. The bytes are built here from the Kafka
protocol rules (Apache Kafka's clients/src/main/resources/common/message/*.json
and the record batch v2 layout), independently of our C codecs, so a seed that
our decoder refuses points at a schema bug rather than agreeing with it.

Seeds: every API the broker serves (data, consumer groups, admin) at its
lowest version, first flexible version, highest version and one in between,
a few variants (null arrays, tagged fields, several record batches, static
members, several coordinator keys), and some malformed frames (truncations,
bad counts, bad tags, corrupt batches, lengths past the end).

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
    8: ("offset_commit", 0, 8, 8),
    9: ("offset_fetch", 0, 8, 6),
    10: ("find_coordinator", 0, 4, 3),
    11: ("join_group", 0, 9, 6),
    12: ("heartbeat", 0, 4, 4),
    13: ("leave_group", 0, 5, 4),
    14: ("sync_group", 0, 5, 4),
    15: ("describe_groups", 0, 5, 5),
    16: ("list_groups", 0, 4, 3),
    18: ("api_versions", 0, 3, 3),
    19: ("create_topics", 0, 7, 5),
    20: ("delete_topics", 0, 6, 4),
    21: ("delete_records", 0, 2, 2),
    23: ("offset_for_leader_epoch", 0, 4, 4),
    32: ("describe_configs", 0, 4, 4),
    33: ("alter_configs", 0, 2, 2),
    37: ("create_partitions", 0, 3, 2),
    42: ("delete_groups", 0, 2, 2),
    44: ("incremental_alter_configs", 0, 1, 1),
    47: ("offset_delete", 0, 0, 127),   # never flexible
    60: ("describe_cluster", 0, 0, 0),
}
KAPI = {"PRODUCE": 0, "FETCH": 1, "LIST_OFFSETS": 2, "METADATA": 3, "OFFSET_COMMIT": 8, "OFFSET_FETCH": 9,
        "FIND_COORDINATOR": 10, "JOIN_GROUP": 11, "HEARTBEAT": 12, "LEAVE_GROUP": 13, "SYNC_GROUP": 14,
        "DESCRIBE_GROUPS": 15, "LIST_GROUPS": 16, "API_VERSIONS": 18, "CREATE_TOPICS": 19, "DELETE_TOPICS": 20,
        "DELETE_RECORDS": 21, "OFFSET_FOR_LEADER_EPOCH": 23, "DESCRIBE_CONFIGS": 32, "ALTER_CONFIGS": 33,
        "CREATE_PARTITIONS": 37, "DELETE_GROUPS": 42, "INCREMENTAL_ALTER_CONFIGS": 44, "OFFSET_DELETE": 47,
        "DESCRIBE_CLUSTER": 60}

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


# ---- consumer groups (JoinGroupRequest.json ... OffsetDeleteRequest.json) ----

# The consumer protocol's subscription (ConsumerProtocolSubscription v0) and
# assignment, as group members put them in JoinGroup / SyncGroup bytes.
SUBSCRIPTION = b"\x00\x00" + struct.pack(">i", 1) + struct.pack(">h", 10) + b"fuzz-topic" + struct.pack(">i", -1)
ASSIGNMENT = (b"\x00\x00" + struct.pack(">i", 1) + struct.pack(">h", 10) + b"fuzz-topic"
              + struct.pack(">iii", 2, 0, 1) + struct.pack(">i", -1))


def find_coordinator(v, w, key_type=0, keys=("fuzz-group",)):
    if v <= 3:
        w.string(keys[0])               # Key
    if v >= 1:
        w.i8(key_type)                  # KeyType (0 group, 1 transaction)
    if v >= 4:
        w.array(list(keys), lambda w, k: w.string(k))   # CoordinatorKeys
    return w.tags()


def join_group(v, w, member_id="", instance=None, reason="fuzz"):
    w.string("fuzz-group").i32(30000)   # GroupId, SessionTimeoutMs
    if v >= 1:
        w.i32(60000)                    # RebalanceTimeoutMs
    w.string(member_id)
    if v >= 5:
        w.string(instance)              # GroupInstanceId
    w.string("consumer")                # ProtocolType
    w.array([("range", SUBSCRIPTION), ("roundrobin", SUBSCRIPTION)],
            lambda w, p: w.string(p[0]).bytes_(p[1]).tags())
    if v >= 8:
        w.string(reason)                # Reason
    return w.tags()


def heartbeat(v, w):
    w.string("fuzz-group").i32(1).string("member-1")
    if v >= 3:
        w.string(None)                  # GroupInstanceId
    return w.tags()


def leave_group(v, w):
    w.string("fuzz-group")
    if v <= 2:
        w.string("member-1")            # MemberId
    else:
        def member(w, m):
            w.string(m[0]).string(m[1])
            if v >= 5:
                w.string("shutting down")   # Reason
            w.tags()
        w.array([("member-1", None), ("", "instance-2")], member)
    return w.tags()


def sync_group(v, w, assignments=True):
    w.string("fuzz-group").i32(1).string("member-1")
    if v >= 3:
        w.string(None)                  # GroupInstanceId
    if v >= 5:
        w.string("consumer").string("range")    # ProtocolType, ProtocolName
    w.array([("member-1", ASSIGNMENT), ("member-2", b"")] if assignments else [],
            lambda w, a: w.string(a[0]).bytes_(a[1]).tags())
    return w.tags()


def describe_groups(v, w):
    w.array(["fuzz-group", "other-group"], lambda w, g: w.string(g))
    if v >= 3:
        w.boolean(True)                 # IncludeAuthorizedOperations
    return w.tags()


def list_groups(v, w, states=("Stable", "Empty")):
    if v >= 4:
        w.array(None if states is None else list(states), lambda w, st: w.string(st))  # StatesFilter
    return w.tags()


def offset_commit(v, w):
    w.string("fuzz-group")
    if v >= 1:
        w.i32(1).string("member-1")     # GenerationId, MemberId
    if v >= 7:
        w.string(None)                  # GroupInstanceId
    if 2 <= v <= 4:
        w.i64(-1)                       # RetentionTimeMs

    def part(w, p):
        w.i32(p[0]).i64(p[1])
        if v >= 6:
            w.i32(-1)                   # CommittedLeaderEpoch
        if v == 1:
            w.i64(1700000000000)        # CommitTimestamp
        w.string(p[2]).tags()           # CommittedMetadata

    def topic(w, t):
        w.string(t).array([(0, 42, "meta"), (1, 7, None)], part).tags()
    w.array(["fuzz-topic"], topic)
    return w.tags()


def offset_fetch(v, w, all_topics=False):
    def topic(w, t):
        w.string(t).array([0, 1, 2], lambda w, p: w.i32(p)).tags()
    topics = None if all_topics else ["fuzz-topic"]
    if v <= 7:
        w.string("fuzz-group").array(topics, topic)
    else:
        def group(w, g):
            w.string(g[0]).array(g[1], topic).tags()
        w.array([("fuzz-group", topics), ("other-group", None)], group)
    if v >= 7:
        w.boolean(False)                # RequireStable
    return w.tags()


def delete_groups(v, w):
    w.array(["fuzz-group", "other-group"], lambda w, g: w.string(g))
    return w.tags()


def offset_delete(v, w):
    def topic(w, t):
        w.string(t).array([0, 1], lambda w, p: w.i32(p))
    w.string("fuzz-group").array(["fuzz-topic"], topic)
    return w

# ---- admin APIs (DeleteRecordsRequest.json ... DescribeClusterRequest.json) ----


def delete_records(v, w):
    def topic(w, t):
        w.string(t).array([(0, 10), (1, -1)], lambda w, p: w.i32(p[0]).i64(p[1]).tags()).tags()
    w.array(["fuzz-topic"], topic)
    w.i32(30000)                        # TimeoutMs
    return w.tags()


def offset_for_leader_epoch(v, w):
    if v >= 3:
        w.i32(-1)                       # ReplicaId

    def part(w, p):
        w.i32(p)
        if v >= 2:
            w.i32(-1)                   # CurrentLeaderEpoch
        w.i32(0).tags()                 # LeaderEpoch

    def topic(w, t):
        w.string(t).array([0, 1], part).tags()
    w.array(["fuzz-topic"], topic)
    return w.tags()


def describe_configs(v, w):
    def resource(w, r):
        w.i8(r[0]).string(r[1]).array(r[2], lambda w, k: w.string(k)).tags()
    w.array([(2, "fuzz-topic", None), (4, "1", ["num.partitions", "log.retention.ms"])], resource)
    if v >= 1:
        w.boolean(True)                 # IncludeSynonyms
    if v >= 3:
        w.boolean(True)                 # IncludeDocumentation
    return w.tags()


def alter_configs(v, w):
    def resource(w, r):
        w.i8(r[0]).string(r[1]).array(r[2], lambda w, c: w.string(c[0]).string(c[1]).tags()).tags()
    w.array([(2, "fuzz-topic", [("retention.ms", "3600000"), ("cleanup.policy", None)]),
             (4, "1", [])], resource)
    w.boolean(True)                     # ValidateOnly
    return w.tags()


def create_partitions(v, w, assignments=True):
    def topic(w, t):
        w.string(t[0]).i32(t[1])
        w.array(t[2], lambda w, a: w.array(a, lambda w, b: w.i32(b)).tags())   # Assignments
        w.tags()
    w.array([("fuzz-topic", 4, [[1], [1]] if assignments else None), ("other", 2, None)], topic)
    w.i32(30000).boolean(False)         # TimeoutMs, ValidateOnly
    return w.tags()


def incremental_alter_configs(v, w):
    def resource(w, r):
        w.i8(r[0]).string(r[1])
        w.array(r[2], lambda w, c: w.string(c[0]).i8(c[1]).string(c[2]).tags())
        w.tags()
    w.array([(2, "fuzz-topic", [("retention.ms", 0, "3600000"), ("cleanup.policy", 2, "compact"),
                                ("segment.bytes", 1, None), ("cleanup.policy", 3, "delete")]),
             (4, "1", [("log.retention.ms", 0, "1")])], resource)
    w.boolean(False)                    # ValidateOnly
    return w.tags()


def describe_cluster(v, w):
    w.boolean(True)                     # IncludeClusterAuthorizedOperations
    return w.tags()


BODIES = {0: produce, 1: fetch, 2: list_offsets, 3: metadata, 8: offset_commit, 9: offset_fetch,
          10: find_coordinator, 11: join_group, 12: heartbeat, 13: leave_group, 14: sync_group,
          15: describe_groups, 16: list_groups, 18: api_versions, 19: create_topics, 20: delete_topics,
          21: delete_records, 23: offset_for_leader_epoch, 32: describe_configs, 33: alter_configs,
          37: create_partitions, 42: delete_groups, 44: incremental_alter_configs, 47: offset_delete,
          60: describe_cluster}


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
    out["find_coordinator-v1-txn"] = request(10, 1, key_type=1, keys=("fuzz-txn",))
    out["find_coordinator-v4-many-keys"] = request(10, 4, keys=("g1", "g2", "g3"))
    out["join_group-v5-static-member"] = request(11, 5, member_id="member-1", instance="instance-1")
    out["join_group-v9-null-reason"] = request(11, 9, reason=None)
    out["sync_group-v5-follower"] = request(14, 5, assignments=False)
    out["list_groups-v4-no-filter"] = request(16, 4, states=())
    out["offset_fetch-v7-all-topics"] = request(9, 7, all_topics=True)
    out["offset_fetch-v8-all-topics"] = request(9, 8, all_topics=True)
    out["create_partitions-v3-no-assignments"] = request(37, 3, assignments=False)

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
    jg = request(11, 9)
    out["bad-join-group-truncated"] = jg[: len(jg) - 9]
    out["bad-join-group-metadata-length"] = (header(11, 5, False) + bytes(W(False).string("g").i32(30000).i32(60000)
                                             .string("").string(None).string("consumer").b)
                                             + struct.pack(">i", 1) + struct.pack(">h", 5) + b"range"
                                             + struct.pack(">i", 0x7FFFFFF0) + b"\x00" * 4)
    out["bad-sync-group-negative-count"] = (header(14, 4, True) + bytes(W(True).string("g").i32(1).string("m")
                                            .string(None).b) + uvarint(0x7FFFFFFF) + b"\x00")
    out["bad-offset-commit-null-group"] = header(8, 2, False) + struct.pack(">hi", -1, 1) + b"\x00" * 16
    out["bad-offset-delete-flexible-count"] = header(47, 0, False) + struct.pack(">h", 1) + b"g" + b"\x02"
    out["bad-describe-configs-huge-keys"] = (header(32, 4, True) + uvarint(2) + b"\x02" + uvarint(2) + b"t"
                                             + uvarint(0x7FFFFFFF))
    out["bad-incremental-alter-configs-op-only"] = (header(44, 1, True) + uvarint(2) + b"\x02" + uvarint(2) + b"t"
                                                    + uvarint(2) + uvarint(2) + b"x" + b"\x09")
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
