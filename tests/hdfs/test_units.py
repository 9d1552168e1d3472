"""Pieces without processes: Hadoop configuration reading, the block store with its CRC
meta files (append, recovery, rollback, corruption), the namespace and edit-log replay."""

from __future__ import annotations

import os
import struct

import pytest

from lab.services.hadoop.conf import parse_rack_table, parse_site_xml, render_site_xml
from lab.services.hadoop.errors import FileAlreadyExistsException, InvalidPathException
from lab.services.hdfs import checksum
from lab.services.hdfs.blockstore import BlockStore
from lab.services.hdfs.checksum import ChecksumError
from lab.services.hdfs.config import Configuration
from lab.services.hdfs.namespace import Namespace
from lab.services.hdfs.storage import EditLog, NNStorage

BPC = 512


def test_site_xml_roundtrip_and_units(tmp_path):
    text = render_site_xml(
        {"dfs.blocksize": "128m", "dfs.heartbeat.interval": "500ms", "dfs.replication": 2}
    )
    assert parse_site_xml(text) == {
        "dfs.blocksize": "128m",
        "dfs.heartbeat.interval": "500ms",
        "dfs.replication": "2",
    }
    (tmp_path / "hdfs-site.xml").write_text(text)
    (tmp_path / "core-site.xml").write_text(render_site_xml({"fs.defaultFS": "hdfs://nn:9000"}))
    conf = Configuration.load(tmp_path)
    assert conf.get_size("dfs.blocksize") == 128 << 20
    assert conf.get_seconds("dfs.heartbeat.interval", "s") == 0.5
    assert (
        conf.get_seconds("dfs.namenode.heartbeat.recheck-interval", "ms") == 300
    )  # default 300000 ms
    assert conf.get_float("dfs.namenode.safemode.threshold-pct") == pytest.approx(0.999)
    assert conf.namenode_rpc_address() == ("nn", 9000)
    with pytest.raises(ValueError, match="not valid XML"):
        parse_site_xml("<configuration><property>", "x.xml")


def test_rack_table_like_tablemapping():
    assert parse_rack_table("# comment\n10.0.0.1 /r1\nhost2 r2\nbad line here\n\n") == {
        "10.0.0.1": "/r1",
        "host2": "/r2",
    }


def write_replica(store, block_id, gs, data, pieces=(700, 1, 3000)):
    w = store.create_rbw(block_id, gs)
    pos = 0
    for n in list(pieces) + [len(data)]:
        part = data[pos : pos + n]
        if not part:
            break
        w.write(part, checksum.piece_crcs(part, pos, BPC), verify=True)
        pos += len(part)
    return w


def test_block_store_meta_file_is_hadoop_layout(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(5000)
    rep = write_replica(store, 7, 1001, data).finalize()
    meta = rep.meta_path.read_bytes()
    assert rep.meta_path.name == "blk_7_1001.meta" and rep.data_path.parent.name == "finalized"
    assert struct.unpack(">HBI", meta[:7]) == (1, 2, BPC)
    crcs = struct.unpack(f">{len(range(0, 5000, BPC))}I", meta[7:])
    assert list(crcs) == [checksum.crc_continue(data[i : i + BPC], 0) for i in range(0, 5000, BPC)]
    assert b"".join(store.read_verified(rep, 0, 5000)) == data
    assert b"".join(store.read_verified(rep, 1234, 10)) == data[1234:1244]


def test_finalize_fsyncs_only_when_asked(tmp_path, monkeypatch):
    """Hadoop's DataNode fsyncs a finished block only with dfs.datanode.synconclose (off by
    default); the replica is finalized either way."""
    from lab.services.hdfs import blockstore
    from lab.services.hdfs.config import DEFAULTS

    synced = []
    real = os.fsync
    monkeypatch.setattr(blockstore.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    store = BlockStore(tmp_path, BPC)
    rep = write_replica(store, 8, 1001, os.urandom(700)).finalize(sync=False)
    assert synced == [] and rep.state == "finalized"
    rep = write_replica(store, 9, 1001, os.urandom(700)).finalize(sync=True)
    assert len(synced) == 2 and rep.state == "finalized"  # the data and its CRCs
    assert DEFAULTS["dfs.datanode.synconclose"] == "false"


def test_append_partial_chunk_and_rollback(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(1000)
    rep = write_replica(store, 8, 1001, data).finalize()
    w = store.append(8, 1001, 1002, 1000)
    more = os.urandom(2000)
    w.write(more, checksum.piece_crcs(more, 1000, BPC), verify=True)
    rep = w.finalize()
    assert rep.gen_stamp == 1002 and b"".join(store.read_verified(rep, 0, 3000)) == data + more
    w = store.append(8, 1002, 1003, 3000)
    junk = os.urandom(100)
    w.write(junk, checksum.piece_crcs(junk, 3000, BPC), verify=True)
    w.abort()  # unacknowledged append: back to 3000 bytes at genstamp 1002
    rep = store.get(8)
    assert (rep.gen_stamp, rep.length, rep.state) == (1002, 3000, "finalized")
    assert b"".join(store.read_verified(rep, 0, 3000)) == data + more


def test_recovery_cuts_back_to_acknowledged_length(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(4000)
    w = write_replica(store, 9, 1001, data)
    w.close_files()
    w2 = store.recover(9, 1005, 2777)  # mid-chunk: the partial chunk's CRC is recomputed
    rest = data[2777:]
    w2.write(rest, checksum.piece_crcs(rest, 2777, BPC), verify=True)
    rep = w2.finalize()
    assert (rep.gen_stamp, rep.length) == (1005, 4000)
    assert b"".join(store.read_verified(rep, 0, 4000)) == data
    with pytest.raises(ValueError):
        store.recover(9, 1006, 5000)  # cannot have acknowledged more than it holds


def test_corruption_is_detected_on_read_and_in_packets(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(3000)
    rep = write_replica(store, 10, 1001, data).finalize()
    with open(rep.data_path, "r+b") as f:
        f.seek(1500)
        f.write(b"\x00" if data[1500] else b"\x01")
    assert b"".join(store.read_verified(rep, 0, 1000)) == data[:1000]  # chunks before it are fine
    with pytest.raises(ChecksumError) as exc:
        b"".join(store.read_verified(rep, 0, 3000))
    assert exc.value.offset == 0 or exc.value.offset <= 1500
    assert store.verify(rep) is False
    w = store.create_rbw(11, 1001)
    with pytest.raises(ChecksumError):
        w.write(b"x" * 600, checksum.piece_crcs(b"y" * 600, 0, BPC), verify=True)


def test_restart_keeps_rbw_replicas_waiting_to_be_recovered(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(2000)
    w = write_replica(store, 12, 1001, data)
    w.close_files()  # the DataNode dies here
    store2 = BlockStore(tmp_path, BPC)
    rep = store2.get(12)
    # Hadoop's RWR: still unfinished, every byte whose CRC holds kept, reported with its state.
    assert rep.state == "rwr" and rep.length == 2000
    assert rep.data_path.parent.name == "rbw"
    assert store2.report() == [[12, 1001, 2000, 2]]
    # The NameNode's block recovery cuts it to the length chosen and finalizes it.
    done = store2.recover(12, 1002, 1500).finalize()
    assert (done.state, done.length, done.gen_stamp) == ("finalized", 1500, 1002)
    assert b"".join(store2.read_verified(done, 0, 1500)) == data[:1500]
    assert store2.report() == [[12, 1002, 1500]]


def test_a_copy_being_received_is_temporary_and_gone_after_a_restart(tmp_path):
    """Hadoop's TEMPORARY replica (a copy another DataNode sends for re-replication or for
    a writer's pipeline recovery): in tmp/, in no block report, deleted at start-up; once
    complete, finalized (re-replication) or made RBW for the recovery pipeline."""
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(1300)
    w = store.create_rbw(20, 1001, temporary=True)
    w.write(data, checksum.piece_crcs(data, 0, BPC), verify=True)
    assert (w.rep.state, w.rep.data_path.parent.name) == ("temporary", "tmp")
    assert store.report() == []
    done = write_replica(store, 21, 1001, data)  # an ordinary one beside it
    done.close_files()
    copy = store.create_rbw(22, 1001, temporary=True)
    copy.write(data, checksum.piece_crcs(data, 0, BPC), verify=True)
    store.temporary_to_rbw(copy.rep)  # a complete TRANSFER_RBW copy
    assert (copy.rep.state, copy.rep.data_path.parent.name) == ("rbw", "rbw")
    w.close_files()  # the DataNode dies while block 20's copy arrives
    store2 = BlockStore(tmp_path, BPC)
    assert store2.get(20) is None and list((tmp_path / "current" / "tmp").iterdir()) == []
    assert sorted(store2.report()) == [[21, 1001, 1300, 2], [22, 1001, 1300, 2]]
    finished = store2.create_rbw(23, 1001, temporary=True)
    finished.write(data, checksum.piece_crcs(data, 0, BPC), verify=True)
    rep = finished.finalize(sync=False)  # a complete re-replication copy
    assert (rep.state, rep.data_path.parent.name) == ("finalized", "finalized")
    assert [23, 1001, 1300] in store2.report()


def test_a_replica_being_written_is_read_up_to_its_visible_length(tmp_path):
    """read_raw of an RBW replica, slab by slab up to a visible length that cuts a chunk:
    every chunk's CRC matches the bytes sent, the cut one's as of the visible end although
    the replica already holds more of that chunk."""
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(5000)
    w = write_replica(store, 30, 1001, data)  # 5000 bytes on disk, still being written
    visible = 3 * BPC + 100
    got = b""
    for pos in range(0, visible, 2 * BPC):  # slabs of two chunks, as a reader is served
        piece, crcs = store.read_raw(w.rep, pos, min(2 * BPC, visible - pos), visible=visible)
        assert checksum.pieces_match(piece, pos, BPC, crcs)
        got += piece
    assert got == data[:visible]
    w.close_files()


def test_restart_drops_a_last_chunk_whose_crc_was_not_written(tmp_path):
    store = BlockStore(tmp_path, BPC)
    data = os.urandom(2 * BPC + 100)
    w = write_replica(store, 13, 1001, data)
    w.close_files()
    with open(w.rep.data_path, "ab") as f:  # died between a chunk's data and its CRC
        f.write(b"x" * 50)
    rep = BlockStore(tmp_path, BPC).get(13)
    assert (rep.state, rep.length) == ("rwr", 2 * BPC)
    assert rep.data_path.stat().st_size == 2 * BPC


def test_namespace_rules():
    ns = Namespace("hdfs", "supergroup")
    with pytest.raises(InvalidPathException):
        ns.lookup("/a/../b")
    ns.apply(
        {
            "op": "OP_MKDIR",
            "path": "/a/b",
            "inodeIds": [16386, 16387],
            "owner": "u",
            "group": "g",
            "mode": 0o755,
            "mtime": 1,
        }
    )
    with pytest.raises(FileAlreadyExistsException):
        ns.check_create("/a/b", overwrite=True)
    assert ns.check_rename("/a/b", "/a/b/c") is None  # not under itself


def test_edit_log_replay_rebuilds_namespace(tmp_path):
    storage = NNStorage(tmp_path)
    ns = Namespace("hdfs", "supergroup")
    storage.format(ns.to_image())
    log = EditLog(storage, 0)
    log.open_segment()
    ops = [
        {
            "op": "OP_MKDIR",
            "path": "/d",
            "inodeIds": [16386],
            "owner": "u",
            "group": "g",
            "mode": 0o755,
            "mtime": 1,
        },
        {
            "op": "OP_ADD",
            "path": "/d/f",
            "inodeId": 16387,
            "owner": "u",
            "group": "g",
            "mode": 0o644,
            "mtime": 2,
            "replication": 3,
            "blockSize": 1024,
            "clientName": "c",
        },
        {
            "op": "OP_ADD_BLOCK",
            "path": "/d/f",
            "blocks": [{"blockId": 1073741825, "genStamp": 1001, "numBytes": 0}],
        },
        {
            "op": "OP_CLOSE",
            "path": "/d/f",
            "blocks": [{"blockId": 1073741825, "genStamp": 1001, "numBytes": 77}],
            "mtime": 3,
        },
        {"op": "OP_RENAME_OLD", "src": "/d/f", "dst": "/g", "timestamp": 4},
    ]
    for op in ops:
        ns.apply(op)
        log.log(op)
    log.roll()
    log.close()
    fresh = Namespace("hdfs", "supergroup")
    txid = storage.images()[-1]
    fresh.load_image(storage.read_image(txid))
    for op in storage.read_ops(txid):
        fresh.apply(op)
    assert fresh.to_image() == ns.to_image()
    assert fresh.get_file("/g").length == 77 and fresh.last_block_id == 1073741825


def test_the_writers_machine_is_kept_in_the_edit_log_and_the_image():
    """FileUnderConstructionFeature's clientName and clientMachine: set by OP_ADD and
    OP_APPEND, kept by the fsimage, gone with OP_CLOSE; an OP_ADD logged before the field
    existed still loads."""
    ns = Namespace("hdfs", "supergroup")
    add = {
        "op": "OP_ADD",
        "inodeId": 16386,
        "owner": "u",
        "group": "g",
        "mode": 0o644,
        "mtime": 1,
        "replication": 3,
        "blockSize": 1024,
    }
    ns.apply(dict(add, path="/open", clientName="c1", clientMachine="10.0.0.7"))
    ns.apply(dict(add, path="/old", inodeId=16387, clientName="c2"))
    fresh = Namespace("hdfs", "supergroup")
    fresh.load_image(dict(ns.to_image(), txid=2))
    assert (fresh.get_file("/open").client_name, fresh.get_file("/open").client_machine) == (
        "c1",
        "10.0.0.7",
    )
    assert fresh.get_file("/old").client_machine is None
    fresh.apply({"op": "OP_CLOSE", "path": "/open", "blocks": [], "mtime": 2})
    assert fresh.get_file("/open").client_machine is None
    fresh.apply({"op": "OP_APPEND", "path": "/open", "clientName": "c3", "clientMachine": "m3"})
    assert fresh.get_file("/open").client_machine == "m3"


def test_piece_count_matches_piece_bounds():
    for offset in (0, 1, 511, 512, 513, 1000):
        for length in (0, 1, 11, 512, 513, 1024, 5000):
            assert checksum.piece_count(offset, length, BPC) == len(
                checksum.piece_bounds(offset, length, BPC)
            )


def test_piece_crcs_match_piece_bounds_at_any_offset():
    data = os.urandom(3000)
    for offset in (0, 1, 100, 511, 512, 700):
        for length in (0, 1, 12, 511, 512, 1300, 3000):
            part = data[:length]
            want = [
                checksum.crc_continue(part[a:b], 0)
                for a, b in checksum.piece_bounds(offset, length, BPC)
            ]
            assert checksum.piece_crcs(part, offset, BPC) == struct.pack(f">{len(want)}I", *want)


def test_pieces_match_agrees_with_per_chunk_crcs_and_finds_any_flipped_bit():
    """The batched check (CRC32C's linearity) answers exactly what comparing one CRC per
    chunk answers: true for the sender's CRCs at any offset and length, false for any one
    flipped bit in the data or the CRCs, or a CRC missing."""
    import random

    rnd = random.Random(18)
    for bpc in (BPC, 16, 3):
        for _ in range(300):
            offset, length = rnd.randrange(3 * bpc), rnd.randrange(20 * bpc)
            data = rnd.randbytes(length)
            crcs = checksum.piece_crcs(data, offset, bpc)
            assert checksum.pieces_match(data, offset, bpc, crcs)
            assert checksum.pieces_match(memoryview(data), offset, bpc, memoryview(crcs))
            if not length:
                continue
            bad = bytearray(data)
            bad[rnd.randrange(length)] ^= 1 << rnd.randrange(8)
            assert not checksum.pieces_match(bytes(bad), offset, bpc, crcs)
            bad = bytearray(crcs)
            bad[rnd.randrange(len(crcs))] ^= 1 << rnd.randrange(8)
            assert not checksum.pieces_match(data, offset, bpc, bytes(bad))
            assert not checksum.pieces_match(data, offset, bpc, crcs[:-4])


def test_bad_setting_stops_the_daemon_with_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "hdfs-site.xml").write_text(
        render_site_xml({"dfs.blocksize": "lots", "dfs.namenode.name.dir": str(tmp_path / "n")})
    )
    res = subprocess.run(
        [sys.executable, "-m", "lab.services.hdfs", "namenode", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.strip().endswith("dfs.blocksize: cannot read 'lots' as a size")
    assert "Traceback" not in res.stderr


def test_block_recovery_takes_the_replicas_in_the_best_state():
    from lab.services.hdfs.leaserecovery import sync_length

    def r(state, length):
        return {"state": state, "length": length}

    # Finalized replicas keep their length; an RBW of that same length joins them.
    length, chosen = sync_length(
        [("a", r("rbw", 900)), ("b", r("finalized", 1000)), ("c", r("rbw", 1000))]
    )
    assert length == 1000 and [d for d, _ in chosen] == ["b", "c"]
    # Unfinished ones: the shortest RBW, and an RWR (found on disk after a restart) is
    # left out while any RBW takes part, however long it is.
    length, chosen = sync_length(
        [("a", r("rwr", 5000)), ("b", r("rbw", 1200)), ("c", r("rbw", 1100))]
    )
    assert length == 1100 and [d for d, _ in chosen] == ["b", "c"]
    length, chosen = sync_length([("a", r("rwr", 700)), ("b", r("rwr", 650))])
    assert length == 650 and [d for d, _ in chosen] == ["a", "b"]
