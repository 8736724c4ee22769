"""Memory and speed of a mirror compare at 2,000,000 list members (prints figures).

A fake client streams a generated, gzip-compressed export (nothing held whole in memory), the
snapshot is built (hashes in private files, sorted keys in memory), 2,000,000 cohort contacts
are compared (1% left, 1% joined, 1% renamed) and the leavers are read. Peak resident memory is
the process's ru_maxrss.

    .venv/bin/python benchmarks/mirror_memory.py [--members 2000000] [--custom-fields 1]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil
from target_sendgrid_contacts.removal import removal_decision
from target_sendgrid_contacts.snapshot_loading import load_snapshot


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def contact_id(n: int) -> str:
    return f"{n:08x}-7d2c-4b1e-9c3a-{n:012x}"


def export_lines(members: int, custom_fields: int) -> Iterator[bytes]:
    custom = [f"field_{i}" for i in range(custom_fields)]
    yield (
        ",".join(["EMAIL", "FIRST_NAME", "LAST_NAME", "CONTACT_ID", "CREATED_AT", *custom]) + "\n"
    ).encode()
    for n in range(members):
        values = [f'"value{n % 97}"' for _ in custom]
        yield (
            f'"person{n}@example.com","First{n % 5000}","Last{n}","{contact_id(n)}",'
            f'"2026-01-01T00:00:00Z"{"," if values else ""}{",".join(values)}\n'
        ).encode()


class FakeRaw:
    def __init__(self, members: int, custom_fields: int) -> None:
        self.members = members
        self.custom_fields = custom_fields

    def stream(self, amt: int, decode_content: bool = False) -> Iterator[bytes]:
        compressor = zlib.compressobj(level=1, wbits=31)
        buffer: list[bytes] = []
        size = 0
        for line in export_lines(self.members, self.custom_fields):
            buffer.append(line)
            size += len(line)
            if size >= amt:
                out = compressor.compress(b"".join(buffer))
                buffer, size = [], 0
                if out:
                    yield out
        yield compressor.compress(b"".join(buffer)) + compressor.flush()


class FakeResponse:
    def __init__(self, body: object = None, raw: FakeRaw | None = None) -> None:
        self._body = body
        self.raw = raw

    def json(self) -> object:
        return self._body

    def close(self) -> None:
        pass


class FakeClient:
    """Answers the export calls the way SendGrid does, streaming a generated file."""

    def __init__(self, members: int, custom_fields: int) -> None:
        self.raw = FakeRaw(members, custom_fields)

    def request(self, method: str, path: str, **_: object) -> FakeResponse:
        if method == "POST":
            return FakeResponse({"id": "bench"})
        return FakeResponse({"id": "bench", "status": "ready", "urls": ["https://files/x.gz"]})

    def download(self, url: str) -> FakeResponse:
        return FakeResponse(raw=self.raw)

    def with_session(self, _session: object) -> FakeClient:
        """The snapshot load's thread asks for a twin; one fake serves both."""
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2_000_000)
    parser.add_argument("--custom-fields", type=int, default=1)
    args = parser.parse_args()
    n = args.members
    fields = {f"e{i}_T": f"field_{i}" for i in range(args.custom_fields)}

    print(f"python {sys.version.split()[0]}, {n:,} members, {args.custom_fields} custom field(s)")
    print(f"rss after imports: {rss_mb():.0f} MB")
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        snapshot = load_snapshot(
            FakeClient(n, args.custom_fields),
            "list-1",
            custom_field_names=fields,
            workdir=Path(workdir),
            poll_interval=0.01,
            timeout=10,
        )
        loaded = time.perf_counter()
        print(
            f"load (export parse + hash + sort): {loaded - started:.1f} s, "
            f"{n / (loaded - started):,.0f} rows/s; rss {rss_mb():.0f} MB, "
            f"peak {peak_mb():.0f} MB; ids file {snapshot.path.stat().st_size / 1e6:.0f} MB"
        )

        outcomes = {"new": 0, "changed": 0, "unchanged": 0}
        churn = max(n // 100, 1)
        started = time.perf_counter()
        for i in range(churn, n + churn):  # members [0, churn) left; [n, n+churn) joined
            contact = {
                "email": f"person{i}@example.com",
                "first_name": f"First{i % 5000}",
                "last_name": f"Last{i}",
                "custom_fields": {fid: f"value{i % 97}" for fid in fields},
            }
            if i % 100 == 50:
                contact["last_name"] = f"Renamed{i}"
            outcomes[snapshot.compare(contact)] += 1
        compared = time.perf_counter()
        print(
            f"compare: {compared - started:.1f} s, {n / (compared - started):,.0f} contacts/s; "
            f"{outcomes}; rss {rss_mb():.0f} MB, peak {peak_mb():.0f} MB"
        )

        leavers = snapshot.count_leavers()
        read = sum(1 for _ in snapshot.leavers())
        done = time.perf_counter()
        decision = removal_decision(
            list_size=snapshot.size, leavers=leavers, cohort_complete=True, max_removal_ratio=0.05
        )
        print(
            f"leavers: {leavers:,} counted, {read:,} read in {done - compared:.1f} s; "
            f"decision: {decision.reason}"
        )
        snapshot.close()
    print(f"peak rss of the whole run: {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
