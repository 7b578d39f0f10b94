"""Why a message or reading went to quarantine: dotted reason codes.

Each code names the first check that failed; ``detail`` in the quarantine row
says what exactly. The list is documented in ``docs/collector.md``.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    TOPIC_INVALID = "topic.invalid"  # not parkenergy/v1/{enterprise}/{meter|_batch|_status}
    PAYLOAD_UNDECODABLE = "payload.undecodable"  # not UTF-8 JSON
    PAYLOAD_SCHEMA = "payload.schema"  # JSON, but not a reading, a batch or a status
    ENTERPRISE_UNKNOWN = "registry.unknown_enterprise"
    METER_UNKNOWN = "registry.unknown_meter"
    METER_NOT_OWNED = "registry.meter_not_owned"  # meter belongs to another enterprise (spoofing)
    ENTERPRISE_MISMATCH = "topic.enterprise_mismatch"  # payload names another enterprise (spoofing)
    METER_RETIRED = "registry.meter_retired"
    UNIT_UNKNOWN = "unit.unknown"
    UNIT_NOT_CONVERTIBLE = "unit.not_convertible"
    TS_MISSING = "timestamp.missing"
    TS_UNPARSABLE = "timestamp.unparsable"
    TS_NAIVE = "timestamp.naive"  # no UTC offset: event time would be a guess
    TS_FUTURE = "timestamp.future"  # more than the tolerance after receipt
    TS_TOO_OLD = "timestamp.too_old"  # before 2015-01-01
    VALUE_MISSING = "value.missing"
    VALUE_NOT_NUMERIC = "value.not_numeric"  # never coerced to 0 (DOMAIN.md §8)
    VALUE_NOT_FINITE = "value.not_finite"  # NaN or ±Infinity
    VALUE_NEGATIVE_REGISTER = "value.negative_register"
    VALUE_NEGATIVE_INTERVAL = "value.negative_interval"
    VALUE_OUT_OF_RANGE = "value.out_of_range"  # |value| beyond any real meter
    DB_REJECTED = "db.rejected"  # the database refused the row (permanent error)
