#!/usr/bin/python3
"""Segment and index bytes written by our C builder (`kfs_dump --make`) are
read by an independent Python reader (kfs_reader.py) and rebuilt byte for
byte by an independent Python writer (below, from DESIGN.md); what Python
writes, the C reader (`kfs_dump`) accepts; every corruption is refused by
both readers. No broker is started.

    KFS_DUMP   the kfs_dump binary (default <repo>/bin/kfs_dump)
"""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import kfs_reader as kr  # noqa: E402

KFS_DUMP = os.environ.get("KFS_DUMP", os.path.join(REPO, "bin", "kfs_dump"))


def py_build_segment(batches, created_ms, interval):
    """An independent writer: the .kfs and .index for a list of batch byte
    strings, per DESIGN.md."""
    heads = [kr.parse_batch_header(b) for b in batches]
    body = b"".join(batches)
    count = sum(h["record_count"] for h in heads)
    seg = (struct.pack(">4sHHqiqI", b"KAFS", 1, 0, heads[0]["base_offset"], count, created_ms, 0) + body +
           struct.pack(">Iq4s", kr.crc32c(body), heads[-1]["last_offset"], b"END!"))
    entries, since, pos = [], 0, 32
    for b, h in zip(batches, heads):
        if not entries or since >= interval:
            entries.append((h["base_offset"], pos))
            since = 0
        since += h["record_count"]
        pos += len(b)
    idx = struct.pack(">4sHiiH", b"IDX\x00", 1, len(entries), interval, 0) + b"".join(
        struct.pack(">qi", o, p) for o, p in entries)
    return seg, idx


class KfsReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(KFS_DUMP, os.X_OK):
            raise RuntimeError("%s missing: build it with `make bin/kfs_dump` (or set KFS_DUMP)" % KFS_DUMP)
        cls.tmp = tempfile.TemporaryDirectory(prefix="kfs-reader-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def make(self, n, base=0, interval=10):
        kfs, idx = self.path("m%d-%d-%d.kfs" % (n, base, interval)), self.path("m%d-%d-%d.index" % (n, base, interval))
        out = subprocess.run([KFS_DUMP, "--make", kfs, idx, str(n), str(base), str(interval)],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(kfs, "rb") as f:
            seg = f.read()
        with open(idx, "rb") as f:
            ix = f.read()
        return seg, ix

    def dump(self, seg, idx=None, name="x.kfs"):
        """Runs the C reader on the given bytes; returns (exit code, output)."""
        kfs = self.path(name)
        with open(kfs, "wb") as f:
            f.write(seg)
        args = [KFS_DUMP, kfs]
        if idx is not None:
            with open(kfs + ".index", "wb") as f:
                f.write(idx)
            args.append(kfs + ".index")
        out = subprocess.run(args, capture_output=True, timeout=60)
        return out.returncode, (out.stdout + out.stderr).decode("utf-8", "replace")

    def check_both_refuse(self, seg, idx, what):
        with self.assertRaises(ValueError, msg=what) as cm:
            s = kr.parse_segment(seg)
            kr.check_index(s, kr.parse_index(idx))
        rc, out = self.dump(seg, idx)
        self.assertEqual(rc, 1, "%s: kfs_dump accepted it:\n%s" % (what, out))
        return str(cm.exception)

    def test_crc32c_known_answers(self):
        self.assertEqual(kr.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(kr.crc32c(bytes(32)), 0x8A9136AA)
        self.assertEqual(kr.crc32c(b"\xff" * 32), 0x62A8AB43)
        self.assertEqual(kr.crc32c(b"6789", kr.crc32c(b"12345")), 0xE3069283)

    def test_c_segments_read_in_python_and_rebuild_byte_for_byte(self):
        for n, base, interval in [(1, 0, 10), (2, 5, 1), (12, 1000, 10), (40, 123456789012, 37), (300, 0, 100)]:
            with self.subTest(n=n, base=base, interval=interval):
                seg_b, idx_b = self.make(n, base, interval)
                self.assertEqual(seg_b[:8], b"KAFS\x00\x01\x00\x00")
                self.assertEqual(seg_b[-4:], b"END!")
                self.assertEqual(idx_b[:6], b"IDX\x00\x00\x01")
                seg = kr.parse_segment(seg_b)
                idx = kr.parse_index(idx_b)
                self.assertEqual(seg["version"], 1)
                self.assertEqual(seg["flags"], 0)
                self.assertEqual(seg["base_offset"], base)
                self.assertEqual(len(seg["batches"]), n)
                self.assertEqual(seg["crc"], kr.crc32c(seg_b[32:-16]))
                # the generated offsets are contiguous
                self.assertEqual(seg["last_offset"], base + seg["message_count"] - 1)
                pos = 32
                for b in seg["batches"]:
                    self.assertEqual(b["position"], pos)
                    recs = list(kr.batch_records(b["bytes"]))
                    self.assertEqual([r["offset"] for r in recs],
                                     list(range(b["base_offset"], b["last_offset"] + 1)))
                    self.assertEqual(recs[0]["value"], b"message %d" % b["base_offset"])
                    pos += b["length"]
                self.assertEqual(pos, len(seg_b) - 16)
                self.assertEqual(idx["interval"], interval)
                self.assertEqual(idx["entries"][0], (base, 32))
                starts = {b["position"]: b["base_offset"] for b in seg["batches"]}
                for off, p in idx["entries"]:
                    self.assertEqual(starts.get(p), off, "entry (%d, %d)" % (off, p))
                    self.assertEqual(struct.unpack_from(">q", seg_b, p)[0], off)
                kr.check_index(seg, idx)
                if interval == 1:
                    self.assertEqual(idx["count"], n)
                # lookups land on a batch holding the offset or before it
                for b in seg["batches"]:
                    e = kr.lookup(idx, b["last_offset"])
                    self.assertLessEqual(e[0], b["base_offset"])
                self.assertIsNone(kr.lookup(idx, base - 1))
                # an independent writer makes the same bytes
                py_seg, py_idx = py_build_segment([bytes(b["bytes"]) for b in seg["batches"]],
                                                  seg["created_ms"], interval)
                self.assertEqual(py_seg, seg_b)
                self.assertEqual(py_idx, idx_b)
                rc, out = self.dump(seg_b, idx_b, name=kr.segment_key("n", "t", 0, base).split("/")[-1])
                self.assertEqual(rc, 0, out)
                self.assertIn("segment: ok", out)
                self.assertIn("index: ok", out)

    def test_python_written_segments_pass_the_c_reader(self):
        seg_b, _ = self.make(25, 77, 10)
        batches = [bytes(b["bytes"]) for b in kr.parse_segment(seg_b)["batches"]]
        for interval in (1, 3, 50, 1000):
            py_seg, py_idx = py_build_segment(batches, 1700000000000, interval)
            rc, out = self.dump(py_seg, py_idx)
            self.assertEqual(rc, 0, out)
        # a subset with a gap in the offsets is still a valid segment
        py_seg, py_idx = py_build_segment(batches[:3] + batches[10:], 1, 10)
        rc, out = self.dump(py_seg, py_idx)
        self.assertEqual(rc, 0, out)
        kr.check_index(kr.parse_segment(py_seg), kr.parse_index(py_idx))
        # the file name must agree with the header
        rc, out = self.dump(py_seg, None, name="segment-%020d.kfs" % 78)
        self.assertEqual(rc, 1, out)
        rc, out = self.dump(py_seg, None, name="segment-%020d.kfs" % 77)
        self.assertEqual(rc, 0, out)

    def test_corruptions_are_refused_by_both_readers(self):
        seg_b, idx_b = self.make(8, 500, 10)
        seg = kr.parse_segment(seg_b)
        n = len(seg_b)

        def patched(data, at, fmt, value):
            b = bytearray(data)
            struct.pack_into(fmt, b, at, value)
            return bytes(b)

        def fix_crc(data):
            return patched(data, len(data) - 16, ">I", kr.crc32c(data[32:-16]))

        # a flipped byte anywhere in the body: the segment CRC
        for at in range(32, n - 16, max(1, (n - 48) // 40)):
            b = bytearray(seg_b)
            b[at] ^= 0x04
            msg = self.check_both_refuse(bytes(b), idx_b, "flip at %d" % at)
            self.assertIn("CRC-32C", msg)
        # a batch whose own CRC is wrong, with a good segment CRC
        b = bytearray(seg_b)
        b[seg["batches"][2]["position"] + 70] ^= 1
        msg = self.check_both_refuse(fix_crc(bytes(b)), idx_b, "batch crc")
        self.assertIn("batch at", msg)
        cases = {
            "header magic": patched(seg_b, 0, ">4s", b"KAFZ"),
            "version 2": patched(seg_b, 4, ">H", 2),
            "LZ4 flag": patched(seg_b, 6, ">H", 1),
            "unknown flag": patched(seg_b, 6, ">H", 0x8000),
            "base offset": patched(seg_b, 8, ">q", 499),
            "message count": patched(seg_b, 16, ">i", seg["message_count"] + 1),
            "footer magic": patched(seg_b, n - 4, ">4s", b"END?"),
            "last offset +1": patched(seg_b, n - 12, ">q", seg["last_offset"] + 1),
            "last offset -1": patched(seg_b, n - 12, ">q", seg["last_offset"] - 1),
            "footer crc": patched(seg_b, n - 16, ">I", seg["crc"] ^ 1),
            "batches out of order": fix_crc(patched(seg_b, seg["batches"][3]["position"], ">q",
                                                    seg["batches"][1]["base_offset"])),
            "batch length": fix_crc(patched(seg_b, seg["batches"][3]["position"] + 8, ">i",
                                            seg["batches"][3]["length"] - 12 - 1)),
            "trailing bytes": fix_crc(seg_b[:-16] + b"\0\0\0" + seg_b[-16:]),
            "no batches": seg_b[:32] + seg_b[-16:],
        }
        for what, bad in cases.items():
            with self.subTest(what=what):
                msg = self.check_both_refuse(bad, idx_b, what)
                if "flag" in what:
                    self.assertIn("unknown flags", msg)
        for cut in (0, 1, 31, 32, 47, 48, n // 2, n - 17, n - 1):
            with self.subTest(truncated=cut):
                self.check_both_refuse(seg_b[:cut], idx_b, "truncated to %d" % cut)

        # index corruptions (the segment is fine)
        idx = kr.parse_index(idx_b)
        self.assertGreaterEqual(idx["count"], 3)
        e1 = 16 + 12
        icases = {
            "index magic": patched(idx_b, 0, ">4s", b"IDX1"),
            "index version": patched(idx_b, 4, ">H", 2),
            "entry count": patched(idx_b, 6, ">i", idx["count"] + 1),
            "zero entries": patched(idx_b[:16], 6, ">i", 0),
            "interval 0": patched(idx_b, 10, ">i", 0),
            "other interval": patched(idx_b, 10, ">i", 1),
            "trailing byte": idx_b + b"\0",
            "truncated": idx_b[:-1],
            "entry inside a batch": patched(idx_b, e1 + 8, ">i", idx["entries"][1][1] + 1),
            "entry offset": patched(idx_b, e1, ">q", idx["entries"][1][0] + 1),
            "entries descending": patched(idx_b, e1, ">q", idx["entries"][0][0]),
            "entry missing": patched(idx_b[:-12], 6, ">i", idx["count"] - 1),
            "entry in the header": patched(idx_b, 16 + 8, ">i", 16),
        }
        for what, bad in icases.items():
            with self.subTest(what=what):
                with self.assertRaises(ValueError):
                    kr.check_index(seg, kr.parse_index(bad))
                rc, out = self.dump(seg_b, bad)
                self.assertEqual(rc, 1, "%s: kfs_dump accepted it:\n%s" % (what, out))

    def test_keys(self):
        k = kr.segment_key("default", "orders", 3, 42)
        self.assertEqual(k, "default/orders/3/segment-00000000000000000042.kfs")
        self.assertEqual(kr.parse_key(k), {"ns": "default", "topic": "orders", "partition": 3,
                                           "base_offset": 42, "ext": "kfs"})
        self.assertEqual(kr.parse_key("a/b/t/0/segment-%020d.index" % (2 ** 63 - 1))["ns"], "a/b")
        for bad in ("orders/3/segment-00000000000000000042.kfs", "d/o/03/segment-00000000000000000042.kfs",
                    "d/o/3/segment-42.kfs", "d/o/3/segment-00000000000000000042.log",
                    "d/o/3/segment-99999999999999999999.kfs"):
            with self.assertRaises(ValueError, msg=bad):
                kr.parse_key(bad)


if __name__ == "__main__":
    unittest.main(verbosity=2)
