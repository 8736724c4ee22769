#!/usr/bin/env python3
"""The least a Singer tap can do: SCHEMA, then N RECORD lines, then STATE (no SDK).

N comes from the TRIVIAL_RECORDS environment variable. Each line has the shape and size of a
``cohort_members`` record, so Meltano forwards as many bytes as with the real tap.
"""

from __future__ import annotations

import json
import os
import sys

SCHEMA = {
    "type": "SCHEMA",
    "stream": "cohort_members",
    "key_properties": ["amplitude_id"],
    "schema": {"type": "object", "properties": {"amplitude_id": {"type": "integer"}}},
}
LINE = (
    '{"type":"RECORD","stream":"cohort_members","record":{"cohort_id":"e2e","cohort_name":'
    '"End-to-end benchmark","cohort_last_computed":"2025-11-13T02:13:20+00:00","amplitude_id":%d,'
    '"user_id":"u%d","user_properties":{"email":"person.%d@example.com","first_name":"Anna",'
    '"last_name":"Smith","country":"Germany","plan":"pro","signup_date":"2024-03-01",'
    '"lifetime_value":"123.45","company":"Hooli"}},"time_extracted":"2025-11-13T02:13:20+00:00"}\n'
)


def main() -> None:
    records = int(os.environ.get("TRIVIAL_RECORDS", "1000"))
    out = sys.stdout
    out.write(json.dumps(SCHEMA) + "\n")
    for start in range(0, records, 10_000):
        out.write("".join(LINE % (i, i, i) for i in range(start, min(start + 10_000, records))))
    out.write(json.dumps({"type": "STATE", "value": {"records": records}}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
