"""The least work anyone could do to put an Amplitude cohort into a SendGrid list (no Singer).

Export the cohort, stream the gzip CSV, normalise and validate each email (the target's own
pure check), drop duplicates, PUT bodies of at most 30,000 contacts (and 6 MB) as soon as each is
full, and follow every import job only at the end. No state, no mirror, no rejects file: the
reference that ``end_to_end.py`` compares ``meltano run`` with. Prints one JSON line of counts.

    .venv/bin/python benchmarks/bare_sync.py --amplitude-url URL --sendgrid-url URL --cohort ID
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
import time

import requests
from target_sendgrid_contacts.emails import check_email

from sandbox.config import AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY, SENDGRID_API_KEY

MAX_CONTACTS = 30_000
MAX_BYTES = 6_000_000 - 100_000  # SendGrid's 6 MB, with room for the envelope


def export_body(session: requests.Session, base: str, cohort: str) -> requests.Response:
    auth = (AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY)
    url = f"{base}/api/5/cohorts/request/{cohort}"
    request_id = session.get(url, params={"props": 1}, auth=auth, timeout=60).json()["request_id"]
    while True:
        status = session.get(
            f"{base}/api/5/cohorts/request-status/{request_id}", auth=auth, timeout=60
        )
        if status.status_code == 200 and status.json().get("async_status") == "JOB COMPLETED":
            break
        time.sleep(0.05)
    answer = session.get(
        f"{base}/api/5/cohorts/request/{request_id}/file",
        auth=auth,
        allow_redirects=False,
        stream=True,
        timeout=60,
    )
    if answer.is_redirect:  # a signed storage URL: without the SendGrid or Amplitude keys
        answer = requests.get(answer.headers["Location"], stream=True, timeout=60)
    answer.raise_for_status()
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amplitude-url", required=True)
    parser.add_argument("--sendgrid-url", required=True)
    parser.add_argument("--cohort", required=True)
    parser.add_argument("--list-name", default="bare reference")
    parser.add_argument(
        "--custom-fields",
        default="plan,company",
        help="user properties sent as SendGrid custom fields (must exist)",
    )
    args = parser.parse_args()

    session = requests.Session()  # SendGrid's
    sendgrid = args.sendgrid_url.rstrip("/")
    session.headers["Authorization"] = f"Bearer {SENDGRID_API_KEY}"
    fields = session.get(f"{sendgrid}/v3/marketing/field_definitions", timeout=60).json()
    field_ids = {f["name"]: f["id"] for f in fields.get("custom_fields", [])}
    wanted = [name for name in args.custom_fields.split(",") if name]
    list_id = session.post(
        f"{sendgrid}/v3/marketing/lists", json={"name": args.list_name}, timeout=60
    ).json()["id"]

    body = export_body(requests.Session(), args.amplitude_url.rstrip("/"), args.cohort)
    rows = csv.reader(io.TextIOWrapper(gzip.GzipFile(fileobj=body.raw), encoding="utf-8-sig"))
    header = [h.strip(" \t\r\n\ufeff").removeprefix("gp:").strip() for h in next(rows)]
    at = {name: header.index(name) for name in ("email", "first_name", "last_name", *wanted)}
    seen: set[str] = set()
    jobs: list[str] = []
    contacts: list[str] = []  # each contact already JSON-encoded
    size = 0
    read = invalid = duplicates = 0

    def send() -> None:
        nonlocal contacts, size
        payload = f'{{"list_ids":["{list_id}"],"contacts":[{",".join(contacts)}]}}'
        answer = session.put(
            f"{sendgrid}/v3/marketing/contacts",
            data=payload.encode(),
            headers={"Content-Type": "application/json"},
            timeout=300,
        )
        answer.raise_for_status()
        jobs.append(answer.json()["job_id"])
        contacts, size = [], 0

    for row in rows:
        read += 1
        email = check_email(row[at["email"]] or None).email
        if email is None:
            invalid += 1
            continue
        if email in seen:
            duplicates += 1
            continue
        seen.add(email)
        contact = {
            "email": email,
            "first_name": row[at["first_name"]][:50],
            "last_name": row[at["last_name"]][:50],
        }
        custom = {field_ids[n]: row[at[n]] for n in wanted if row[at[n]] and n in field_ids}
        if custom:
            contact["custom_fields"] = custom
        encoded = json.dumps(contact, ensure_ascii=False)
        if len(contacts) >= MAX_CONTACTS or size + len(encoded) + 1 > MAX_BYTES:
            send()
        contacts.append(encoded)
        size += len(encoded.encode()) + 1
    if contacts:
        send()

    pending = list(jobs)
    while pending:
        still = []
        for job_id in pending:
            job = session.get(
                f"{sendgrid}/v3/marketing/contacts/imports/{job_id}", timeout=60
            ).json()
            if job["status"] == "pending":
                still.append(job_id)
            elif job["status"] != "completed":
                sys.exit(f"import job ended {job['status']}")
        pending = still
        if pending:
            time.sleep(0.2)
    print(
        json.dumps(
            {
                "read": read,
                "sent": len(seen),
                "invalid": invalid,
                "duplicates": duplicates,
                "requests": len(jobs),
            }
        )
    )


if __name__ == "__main__":
    main()
