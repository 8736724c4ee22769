"""Builders shared by the mirror tests: export files as SendGrid writes them."""

from __future__ import annotations

import csv
import gzip
import io

BASE = "https://sg.test"
FILES = "https://files.test"
KEY = "SG.mirror-test-key"
LIST_ID = "0d6f7c3e-1111-4a4a-9b9b-000000000001"
HEADER = ["EMAIL", "FIRST_NAME", "LAST_NAME", "CONTACT_ID", "CREATED_AT", "plan", "Score"]


def export_csv(rows: list[dict[str, str]], header: list[str] = HEADER) -> bytes:
    """CSV bytes as SendGrid's export writes them (quoted, upper-case reserved headers)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, quoting=csv.QUOTE_ALL, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in header})
    return out.getvalue().encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def member(n: int, **fields: str) -> dict[str, str]:
    """Export row of member n: email person{n}@example.com, contact id c-{n}."""
    row = {
        "EMAIL": f"person{n}@example.com",
        "FIRST_NAME": f"First{n}",
        "LAST_NAME": f"Last{n}",
        "CONTACT_ID": f"c-{n}",
        "CREATED_AT": "2026-01-01T00:00:00Z",
    }
    row.update(fields)
    return row
