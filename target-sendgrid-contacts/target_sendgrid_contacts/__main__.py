"""``python -m target_sendgrid_contacts``: the same CLI as ``target-sendgrid-contacts``."""

from __future__ import annotations

from target_sendgrid_contacts.target import TargetSendGridContacts

TargetSendGridContacts.cli()
