"""The Java hashing behind the order Apache lists children, ephemerals and auth ids in
(lab/services/zookeeper/javaorder.py); the order itself is checked against Apache by
test_generated_scenarios.py."""

from lab.services.zookeeper.javaorder import HashSetOrder, _string_hash


def test_string_hash_is_javas():
    # values of String.hashCode, signed ints as Java prints them, made unsigned
    assert _string_hash("") == 0
    assert _string_hash("a") == 97
    assert _string_hash("hello") == 99162322
    assert _string_hash("Aa") == _string_hash("BB") == 2112  # Java's classic collision
    # one code point beyond the BMP is two UTF-16 units: 0xD83D * 31 + 0xDE00
    assert _string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00


def test_table_grows_at_three_quarters_and_never_shrinks():
    s = HashSetOrder(8)
    for i in range(6):
        s.add(f"n{i}")
    assert s.capacity == 8
    s.add("n6")  # the 7th name passes 8 * 0.75
    assert s.capacity == 16
    for i in range(7):
        s.discard(f"n{i}")
    assert len(s) == 0 and s.capacity == 16


def test_order_is_bucket_then_insertion():
    s = HashSetOrder(16)
    # "Aa" and "BB" share a hash (2112): the same bucket, so insertion order decides
    for name in ("BB", "Aa", "c"):
        s.add(name)
    order = s.java_order()
    assert order == ["BB", "Aa", "c"]  # buckets 2112 & 15 = 0, then 99 & 15 = 3
