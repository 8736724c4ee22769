"""Run the demo sync against the sandbox and print a short human summary.

1. Start the sandbox (fake Amplitude, SendGrid and file storage) on 127.0.0.1:8761-8763.
2. `meltano run amplitude-to-sendgrid` in the `sandbox` environment (a fresh sandbox, so saved
   state is ignored with --full-refresh).
3. Show per cohort: members read, contacts upserted, rejected by reason, the list and how many
   members it now holds, and whether that equals the cohort's valid, de-duplicated emails.
4. Unless --once: change a cohort (people leave, join and are renamed), run the job again
   (with state this time) and show that only the changes were sent and the leavers removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"  # meltano.yml's sandbox environment writes the report and rejects here
DEFAULT_PORT = 8761  # Amplitude; SendGrid and storage take the next two, as in meltano.yml
DEMO_DELAYS = {
    "export_polls_before_ready": 2,
    "import_delay_seconds": 1.0,
    "export_delay_seconds": 0.5,
    "removal_delay_seconds": 0.5,
}


def _meltano(sb: Sandbox, output: Path, *args: str) -> int:
    env = dict(os.environ)
    env.setdefault("MELTANO_ENVIRONMENT", "sandbox")
    # The sandbox environment in meltano.yml names the default ports; follow --port.
    env["TAP_AMPLITUDE_COHORT_API_URL"] = sb.amplitude_url
    env["TARGET_SENDGRID_CONTACTS_API_URL"] = sb.sendgrid_url
    env["TARGET_SENDGRID_CONTACTS_REPORT_PATH"] = str(output / "report.json")
    env["TARGET_SENDGRID_CONTACTS_REJECTS_PATH"] = str(output / "rejects.jsonl")
    command = [str(ROOT / ".venv/bin/meltano"), *args]
    print(f"\n$ meltano {' '.join(args)}", flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def _report(output: Path) -> dict:
    path = output / "report.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _downloads(sb: Sandbox) -> int:
    """Export requests so far: each counts against Amplitude's monthly download quota."""
    return sum(
        1
        for r in list(sb.requests)
        if r["service"] == "amplitude"
        and r["path"].startswith("/api/5/cohorts/request/")
        and not r["path"].endswith("/file")
    )


def _summarise(sb: Sandbox, output: Path, title: str, downloads_before: int) -> bool:
    report = _report(output)
    lists = {
        item["id"]: item
        for item in requests.get(f"{sb.sendgrid_url}/_sandbox/lists", timeout=10).json()
    }
    print(f"\n=== {title} ===")
    print(
        f"Amplitude cohort downloads in this run: {_downloads(sb) - downloads_before} "
        "(unchanged cohorts are skipped)"
    )
    ok = True
    for entry in report.get("lists", []):
        list_id = entry.get("list_id")
        cohort_id = entry.get("cohort_id")
        held = lists.get(list_id, {}).get("member_count", 0) if list_id else 0
        rejected = entry.get("rejected_by_reason") or {}
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items())) or "none"
        print(f"{entry.get('list_name')}")
        print(
            f"  cohort {cohort_id}: {entry.get('received', 0)} members read; "
            f"{entry.get('upserted', 0)} upserted ({entry.get('created', 0)} created, "
            f"{entry.get('updated', 0)} updated), {entry.get('unchanged', 0)} unchanged, "
            f"{entry.get('rejected', 0)} rejected ({reasons}), {entry.get('removed', 0)} removed"
        )
        line = f"  the sandbox's list now holds {held} members"
        if cohort_id and list_id:
            expected = sb.generator.expected_emails(cohort_id)
            members = {
                m["email"]
                for m in requests.get(
                    f"{sb.sendgrid_url}/_sandbox/lists/{list_id}/members", timeout=30
                ).json()
            }
            same = members == expected
            ok = ok and same
            line += (
                " = the cohort's valid, de-duplicated, lower-cased emails"
                if same
                else f" (expected {len(expected)}: MISMATCH)"
            )
        print(line)
    totals = report.get("totals", {})
    if totals:
        print(
            f"Totals: received {totals.get('received')}, upserted {totals.get('upserted')}, "
            f"unchanged {totals.get('unchanged')}, rejected {totals.get('rejected')}, "
            f"removed {totals.get('removed')}; {report.get('api_calls')} SendGrid API calls "
            f"in {report.get('seconds', 0):.1f} s. Rejected records: {output / 'rejects.jsonl'}"
        )
    return ok


def main() -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="one sync only, no churn round")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="Amplitude port; SendGrid and storage use the next two",
    )
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="folder for report.json and rejects.jsonl"
    )
    args = parser.parse_args()
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "rejects.jsonl"):
        (output / stale).unlink(missing_ok=True)
    try:
        ports = {
            "amplitude_port": args.port,
            "sendgrid_port": args.port + 1,
            "storage_port": args.port + 2,
        }
        sb = Sandbox(SandboxConfig(**ports, **DEMO_DELAYS)).start()
    except OSError as exc:
        print(
            f"Could not start the sandbox on ports {args.port}-{args.port + 2} ({exc}). "
            "Is another demo running? Try --port.",
            file=sys.stderr,
        )
        return 1
    with sb:
        print(f"Sandbox up: Amplitude {sb.amplitude_url}, SendGrid {sb.sendgrid_url}")
        if _meltano(sb, output, "run", "--full-refresh", "amplitude-to-sendgrid") != 0:
            print("The sync failed: see the log above.", file=sys.stderr)
            return 1
        ok = _summarise(sb, output, "First sync", 0)
        if args.once:
            return 0 if ok else 1
        churn = {"remove": 25, "add": 10, "rename": 5}
        requests.post(f"{sb.amplitude_url}/_sandbox/cohorts/pwrusr1/churn", json=churn, timeout=10)
        print(
            "\nChurn in cohort pwrusr1: 25 members left, 10 joined, 5 renamed. "
            "The other cohorts did not change (their download is skipped)."
        )
        (output / "report.json").unlink(missing_ok=True)
        before = _downloads(sb)
        if _meltano(sb, output, "run", "amplitude-to-sendgrid") != 0:
            print("The second sync failed: see the log above.", file=sys.stderr)
            return 1
        ok = _summarise(sb, output, "Second sync (mirror: only the changes)", before) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
