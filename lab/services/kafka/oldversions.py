"""Produce v0-v2 and Fetch v0-v3, the requests that carry the v0/v1 message-set
formats, and ListOffsets v0 that clients of that era send with them: refused with UNSUPPORTED_VERSION per partition, as a broker that has dropped
them (Kafka 4.0, KIP-896) refuses them, rather than converted as Kafka 2.x did.

Why refuse: this broker stores record batches (message format v2) only, and every
client of the last six years (kafka-python 2.x+, librdkafka, the Java client since
0.11) speaks v2. Converting would mean a second record format on the way in and a
down-conversion of every fetched batch on the way out, with the offset and
timestamp semantics of the old formats, for clients pinned to Kafka 0.10.

Why not close the connection: the old client then retries forever and shows
nothing useful. Answered at its own version, each partition says
UNSUPPORTED_VERSION, which the client raises (kafka-python: UnsupportedVersionError),
and ApiVersions keeps advertising only the versions served, so a client that asks
picks a newer one."""

from __future__ import annotations

from .handlers import empty_fetch_partition
from .protocol.api import ApiKey
from .protocol.errors import Error

# the first version served of each API whose older versions are refused here
SERVED_FROM = {ApiKey.PRODUCE: 3, ApiKey.FETCH: 4, ApiKey.LIST_OFFSETS: 1}


def refused(api_key: int, version: int) -> bool:
    return api_key in SERVED_FROM and 0 <= version < SERVED_FROM[api_key]


def refusal(api_key: int, req: dict) -> dict | None:
    """The response to an old request: every partition it names, UNSUPPORTED_VERSION.
    None for a Produce with acks=0, which gets no response at all."""
    err = Error.UNSUPPORTED_VERSION
    if api_key == ApiKey.PRODUCE:
        if req["acks"] == 0:
            return None
        return {
            "responses": [
                {
                    "name": td["name"],
                    "partition_responses": [
                        {
                            "index": pd["index"],
                            "error_code": err,
                            "base_offset": -1,
                            "log_append_time_ms": -1,
                            "log_start_offset": -1,
                            "record_errors": [],
                            "error_message": None,
                        }
                        for pd in td["partition_data"]
                    ],
                }
                for td in req["topic_data"]
            ],
            "throttle_time_ms": 0,
        }
    if api_key == ApiKey.LIST_OFFSETS:
        return {
            "throttle_time_ms": 0,
            "topics": [
                {
                    "name": t["name"],
                    "partitions": [
                        {
                            "partition_index": pr["partition_index"],
                            "error_code": err,
                            "old_style_offsets": [],
                            "timestamp": -1,
                            "offset": -1,
                            "leader_epoch": -1,
                        }
                        for pr in t["partitions"]
                    ],
                }
                for t in req["topics"]
            ],
        }
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "session_id": 0,
        "responses": [
            {
                "topic": t["topic"],
                "partitions": [
                    empty_fetch_partition(pr["partition"], err) for pr in t["partitions"]
                ],
            }
            for t in req["topics"]
        ],
    }
