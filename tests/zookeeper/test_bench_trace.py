"""lab.bench.zookeeper_trace: the three members' stamps merged into one timeline per
request, and the report of where a request's time goes."""

from __future__ import annotations

from lab.bench.zookeeper_trace import report, timelines


def _request(t0: int, fsync_us: int) -> list[tuple[int, str, str, str]]:
    us = 1000
    return [
        (t0, "F", "client_read>", ""),
        (t0 + 50 * us, "F", "peer_write>", ""),
        (t0 + 120 * us, "L", "peer_read>", "1"),
        (t0 + 200 * us, "L", "fsync>", ""),
        (t0 + (200 + fsync_us) * us, "L", "fsync<", ""),
        (t0 + (300 + fsync_us) * us, "F", "client_write<", ""),
    ]


def test_requests_are_cut_from_the_followers_read_to_its_reply():
    events = _request(10**9, 100) + _request(2 * 10**9, 300)
    events.append((3 * 10**9, "O", "peer_read>", "41"))  # after the last reply: no request
    found = timelines(events[::-1])  # any order: merged by time
    assert [len(r) for r in found] == [6, 6]
    assert found[1][0][0] == 2 * 10**9


def test_the_report_gives_each_event_its_median_offset_and_the_spread():
    events = []
    for i, fsync_us in enumerate((100, 200, 300)):
        events += _request((i + 1) * 10**9, fsync_us)
    text = report(timelines(events))
    assert "most common order of events: 3 of 3 requests" in text
    assert "   400.0 us  L fsync< " in text  # 200 + the median fsync, 200 us
    assert "median 500 us" in text
    assert report([]) == "no request was traced\n"


def test_the_report_says_what_the_cyclic_gc_cost_each_member_and_which_requests_it_hit():
    us = 1000
    hit = _request(10**9, 100)
    hit.insert(2, (10**9 + 60 * us, "L", "gc>", "0"))
    hit.insert(3, (10**9 + 100 * us, "L", "gc<", "0"))
    events = hit + _request(2 * 10**9, 100)
    events += [(3 * 10**9, "F", "gc>", "2"), (3 * 10**9 + 5000 * us, "F", "gc<", "2")]
    text = report(timelines(events), events)
    assert "GC in F: gen2 1 x, 5.0 ms (max 5000 us)" in text
    assert "GC in L: gen0 1 x, 0.0 ms (max 40 us)" in text
    assert "requests with a collection in a member: 1 of 2" in text
