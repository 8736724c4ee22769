"""The fake SendGrid Marketing API: a WSGI app over ``SendGridState``.

Each request goes through, in order: Bearer auth (401 ``authorization required`` for an
unknown key), the body size cap (413 past 6,000,000 bytes), permission (403 ``access
forbidden`` for the restricted key on anything but ``GET /v3/scopes``), validation against
the OpenAPI documents when ``config.validate_requests`` (400 naming the violation, which is
also put in ``environ["sandbox.violation"]`` for the request log), then the operation.
An operation the documents define but the sandbox does not simulate answers 501.

Sandbox assumptions where SendGrid is silent, beyond those in ``sandbox.sendgrid.state``: duplicate
list names are allowed; two equal emails (ignoring case) in one upsert are refused with
400; every contact needs an ``email`` (other identifiers are not simulated); a custom field
value must fit its field's type (Text: string, Number: number, Date: ISO 8601 or
MM/DD/YYYY string) or the request gets 400; at most 500 ids per list-removal call; an
unknown list in an upsert's ``list_ids`` is a 400, in an export's a 404; ``search/emails``
takes at most 100 emails; segments are not simulated.

Inspection (no auth; see ``inspect``), each a JSON array: ``GET /_sandbox/lists`` (id, name,
member_count), ``GET /_sandbox/lists/{id}/members`` and ``GET /_sandbox/contacts[?email=]``
(contact details plus ``contact_id``); and ``POST /_sandbox/contacts`` with ``{"email",
"first_name"?, "last_name"?, "list_ids"}``: immediate, like a person in the UI (201, details).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import msgspec
from msgspec import UNSET
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.config import SENDGRID_API_KEY, SENDGRID_RESTRICTED_KEY, SandboxConfig
from sandbox.openapi import NO_BODY, RequestValidator, Violation
from sandbox.sendgrid.model import (
    MAX_BODY_BYTES,
    MAX_REMOVAL_IDS,
    MAX_SEARCH_EMAILS,
    RESERVED_FIELDS,
    ApiError,
    UpsertBody,
)
from sandbox.sendgrid.state import SendGridState
from sandbox.storage import Storage

logger = logging.getLogger(__name__)

SCOPES = {
    SENDGRID_API_KEY: [
        "api_keys.read",
        "marketing.read",
        "marketing.write",
        "scopes.read",
        "user.profile.read",
    ],
    SENDGRID_RESTRICTED_KEY: ["mail.send", "scopes.read", "user.profile.read"],
}

_ROUTES = Map(
    [
        Rule("/v3/scopes", methods=["GET"], endpoint="scopes"),
        Rule("/v3/marketing/lists", methods=["GET"], endpoint="lists_page"),
        Rule("/v3/marketing/lists", methods=["POST"], endpoint="create_list"),
        Rule("/v3/marketing/lists/<list_id>", methods=["GET"], endpoint="get_list"),
        Rule("/v3/marketing/lists/<list_id>", methods=["PATCH"], endpoint="rename_list"),
        Rule("/v3/marketing/lists/<list_id>", methods=["DELETE"], endpoint="delete_list"),
        Rule("/v3/marketing/lists/<list_id>/contacts", methods=["DELETE"], endpoint="remove"),
        Rule("/v3/marketing/lists/<list_id>/contacts/count", methods=["GET"], endpoint="count"),
        Rule("/v3/marketing/contacts", methods=["PUT"], endpoint="upsert"),
        Rule("/v3/marketing/contacts", methods=["GET"], endpoint="contacts_sample"),
        Rule("/v3/marketing/contacts", methods=["DELETE"], endpoint="delete_contacts"),
        Rule("/v3/marketing/contacts/count", methods=["GET"], endpoint="contact_count"),
        Rule("/v3/marketing/contacts/batch", methods=["POST"], endpoint="batch"),
        Rule("/v3/marketing/contacts/imports/<job_id>", methods=["GET"], endpoint="job"),
        Rule("/v3/marketing/contacts/search/emails", methods=["POST"], endpoint="search"),
        Rule("/v3/marketing/contacts/exports", methods=["POST"], endpoint="start_export"),
        Rule("/v3/marketing/contacts/exports", methods=["GET"], endpoint="exports"),
        Rule("/v3/marketing/contacts/exports/<export_id>", methods=["GET"], endpoint="export"),
        Rule("/v3/marketing/contacts/<contact_id>", methods=["GET"], endpoint="contact"),
        Rule("/v3/marketing/field_definitions", methods=["GET"], endpoint="fields"),
        Rule("/v3/marketing/field_definitions", methods=["POST"], endpoint="create_field"),
        Rule(
            "/v3/marketing/field_definitions/<field_id>", methods=["PATCH"], endpoint="rename_field"
        ),
        Rule(
            "/v3/marketing/field_definitions/<field_id>",
            methods=["DELETE"],
            endpoint="delete_field",
        ),
    ],
    strict_slashes=False,
    merge_slashes=False,
)
_INSPECT = Map(
    [
        Rule("/_sandbox/lists", methods=["GET"], endpoint="lists"),
        Rule("/_sandbox/lists/<list_id>/members", methods=["GET"], endpoint="members"),
        Rule("/_sandbox/contacts", methods=["GET"], endpoint="contacts"),
        Rule("/_sandbox/contacts", methods=["POST"], endpoint="add_contact"),
    ],
    strict_slashes=False,
)


# msgspec decodes a 6 MB upsert body in about 60 % of json.loads's time, and straight into
# untracked structs in about a third (its DecodeError is a ValueError too)
_decode_json = msgspec.json.Decoder().decode
_decode_upsert = msgspec.json.Decoder(UpsertBody).decode


@lru_cache(maxsize=1)
def shared_validator() -> RequestValidator:
    """One validator per process: loading the documents is the slow part."""
    return RequestValidator()


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str, field: str | None = None) -> Response:
    return _json(ApiError(status, message, field).body(), status)


class SendGridApp:
    """WSGI app for every SendGrid path, plus ``inspect`` for its ``/_sandbox/`` paths."""

    def __init__(self, config: SandboxConfig, storage: Storage) -> None:
        self.config = config
        self.storage = storage
        self.state = SendGridState(config, storage)
        self._validator = shared_validator() if config.validate_requests else None

    def reset(self) -> None:
        """Empty the account."""
        self.state.reset()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Answer one request (WSGI); ``/_sandbox/`` paths go to ``inspect``."""
        request = Request(environ)
        response = None
        if request.path.startswith("/_sandbox/"):
            response = self.inspect(request)
        if response is None:
            response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Answer one SendGrid API request."""
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else None
        if key not in SCOPES:
            return _error(401, "authorization required")
        data = request.get_data(cache=True)
        if len(data) > MAX_BODY_BYTES:
            return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        if key != SENDGRID_API_KEY and request.path.rstrip("/") != "/v3/scopes":
            return _error(403, "access forbidden")
        body: Any = NO_BODY
        if data:
            try:
                body = self._decode(request, data)
            except ValueError:
                return self._refuse(request, Violation(None, "request body is not valid JSON"))
        if self._validator is not None:
            violation = self._validator.validate(
                request.method,
                request.path,
                query=request.args,
                headers=request.headers,
                content_type=request.headers.get("Content-Type"),
                raw_body=data,
                body=body,
            )
            if violation is not None:
                return self._refuse(request, violation)
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed):
            if self._validator is not None:  # the documents define it: not simulated
                return _error(501, "sandbox: this operation is not simulated")
            return _error(404, "not found")
        try:
            return getattr(self, "_op_" + endpoint)(request, body, **args)
        except ApiError as error:
            return _json(error.body(), error.status)

    def _decode(self, request: Request, data: bytes) -> Any:
        """The body as JSON values; an upsert's straight as an ``UpsertBody`` when it can be.

        Raises:
            ValueError: For a body that is not JSON.
        """
        if (
            self._validator is None  # the validator reads the body as plain JSON values
            and request.method == "PUT"
            and request.path.rstrip("/") == "/v3/marketing/contacts"
        ):
            try:
                return _decode_upsert(data)
            except ValueError:
                pass  # another shape, or JSON msgspec refuses: the plain path decides
        try:
            return _decode_json(data)
        except ValueError:
            # what json accepts and msgspec does not (a BOM, NaN, lone surrogates) stays accepted
            return json.loads(data)

    @staticmethod
    def _refuse(request: Request, violation: Violation) -> Response:
        request.environ["sandbox.violation"] = str(violation)
        return _json({"errors": [violation.as_error()]}, 400)

    # ----- operations ------------------------------------------------------------------

    def _op_scopes(self, request: Request, _body: Any) -> Response:
        key = request.headers["Authorization"][7:].strip()
        return _json({"scopes": SCOPES[key]})

    def _op_lists_page(self, request: Request, _body: Any) -> Response:
        try:
            size = float(request.args.get("page_size", "100"))
        except ValueError:
            size = 0
        if not size.is_integer() or not 1 <= size <= 1000:
            raise ApiError(400, "page_size must be an integer from 1 to 1000", "page_size")
        page, token = self.state.lists_page(int(size), request.args.get("page_token"))
        base = request.host_url.rstrip("/") + "/v3/marketing/lists"
        meta: dict[str, Any] = {"self": request.url, "count": len(self.state.lists())}
        if token:
            meta["next"] = f"{base}?page_size={int(size)}&page_token={token}"
        for item in page:
            item["_metadata"] = {"self": f"{base}/{item['id']}"}
        return _json({"result": page, "_metadata": meta})

    def _op_create_list(self, request: Request, body: Any) -> Response:
        created = self.state.create_list(_require(body, "name", str))
        created["_metadata"] = {"self": request.host_url + "v3/marketing/lists/" + created["id"]}
        return _json(created, 201)

    def _op_get_list(self, request: Request, _body: Any, list_id: str) -> Response:
        answer = self.state.get_list(list_id)
        if request.args.get("contact_sample") == "true":
            answer["contact_sample"] = self.state.members(list_id)[:50]
        answer["_metadata"] = {"self": request.base_url}
        return _json(answer)

    def _op_rename_list(self, _request: Request, body: Any, list_id: str) -> Response:
        return _json(self.state.rename_list(list_id, _require(body, "name", str)))

    def _op_delete_list(self, request: Request, _body: Any, list_id: str) -> Response:
        job_id = self.state.delete_list(
            list_id, delete_contacts=request.args.get("delete_contacts") == "true"
        )
        return _json({"job_id": job_id}) if job_id else Response(status=204)

    def _op_remove(self, request: Request, _body: Any, list_id: str) -> Response:
        ids = [i for i in request.args.get("contact_ids", "").split(",") if i]
        if not ids:
            raise ApiError(400, "contact_ids is required", "contact_ids")
        if len(ids) > MAX_REMOVAL_IDS:
            raise ApiError(400, f"at most {MAX_REMOVAL_IDS} contact ids per request", "contact_ids")
        return _json({"job_id": self.state.remove_from_list(list_id, ids)}, 202)

    def _op_count(self, _request: Request, _body: Any, list_id: str) -> Response:
        count = self.state.get_list(list_id)["contact_count"]
        return _json({"contact_count": count, "billable_count": count})

    def _op_upsert(self, _request: Request, body: Any) -> Response:
        if isinstance(body, UpsertBody) and body.contacts is not UNSET:
            contacts, list_ids = body.contacts, body.list_ids or []
        else:
            contacts = _require(body, "contacts", list)
            list_ids = body.get("list_ids") or []
            if not all(isinstance(c, dict) for c in contacts):
                raise ApiError(400, "contacts must be objects and list_ids an array", "contacts")
        if not isinstance(list_ids, list):
            raise ApiError(400, "contacts must be objects and list_ids an array", "contacts")
        job_id = self.state.upsert(list_ids, contacts)
        logger.debug("upsert job %s: %d contacts", job_id, len(contacts))
        return _json({"job_id": job_id}, 202)

    def _op_contacts_sample(self, _request: Request, _body: Any) -> Response:
        sample = self.state.contacts(limit=50)
        return _json({"result": sample, "contact_count": self.state.contact_count})

    def _op_delete_contacts(self, request: Request, _body: Any) -> Response:
        if request.args.get("delete_all_contacts") == "true":
            return _json({"job_id": self.state.delete_contacts(None)}, 202)
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        if not ids:
            raise ApiError(400, "ids or delete_all_contacts=true is required", "ids")
        return _json({"job_id": self.state.delete_contacts(ids)}, 202)

    def _op_contact_count(self, _request: Request, _body: Any) -> Response:
        count = self.state.contact_count
        return _json({"contact_count": count, "billable_count": count})

    def _op_batch(self, _request: Request, body: Any) -> Response:
        ids = _require(body, "ids", list)
        found = [c for c in map(self.state.contact_by_id, ids) if c is not None]
        return _json({"result": found})

    def _op_contact(self, _request: Request, _body: Any, contact_id: str) -> Response:
        found = self.state.contact_by_id(contact_id)
        if found is None:
            raise ApiError(404, "contact not found", "id")
        return _json(found)

    def _op_job(self, _request: Request, _body: Any, job_id: str) -> Response:
        return _json(self.state.job(job_id))

    def _op_search(self, _request: Request, body: Any) -> Response:
        emails = _require(body, "emails", list)
        if not all(isinstance(email, str) for email in emails):
            raise ApiError(400, "emails must be strings", "emails")
        if not 1 <= len(emails) <= MAX_SEARCH_EMAILS:
            raise ApiError(400, f"between 1 and {MAX_SEARCH_EMAILS} emails", "emails")
        result = self.state.search_emails(emails)
        if all("error" in item for item in result.values()):
            return _error(404, "contacts not found")
        return _json({"result": result})

    def _op_start_export(self, request: Request, body: Any) -> Response:
        body = body if isinstance(body, dict) else {}
        if body.get("segment_ids"):
            raise ApiError(404, "segments are not simulated", "segment_ids")
        export_id = self.state.start_export(
            list(body.get("list_ids") or []), body.get("file_type", "csv")
        )
        self_url = request.host_url + "v3/marketing/contacts/exports/" + export_id
        return _json({"id": export_id, "_metadata": {"self": self_url}}, 202)

    def _op_exports(self, _request: Request, _body: Any) -> Response:
        return _json({"result": self.state.exports()})

    def _op_export(self, _request: Request, _body: Any, export_id: str) -> Response:
        return _json(self.state.export(export_id))

    def _op_fields(self, _request: Request, _body: Any) -> Response:
        reserved = [
            {"name": name, "field_type": kind, "read_only": read_only}
            for name, kind, read_only in RESERVED_FIELDS
        ]
        return _json({"custom_fields": self.state.field_definitions(), "reserved_fields": reserved})

    def _op_create_field(self, _request: Request, body: Any) -> Response:
        created = self.state.create_field(
            _require(body, "name", str), _require(body, "field_type", str), usable_now=False
        )
        return _json(created)

    def _op_rename_field(self, _request: Request, body: Any, field_id: str) -> Response:
        return _json(self.state.rename_field(field_id, _require(body, "name", str)))

    def _op_delete_field(self, _request: Request, _body: Any, field_id: str) -> Response:
        self.state.delete_field(field_id)
        return Response(status=204)

    # ----- inspection ------------------------------------------------------------------

    def inspect(self, request: Request) -> Response | None:
        """Answer a ``/_sandbox/`` inspection request of this app; None for other paths."""
        try:
            endpoint, args = _INSPECT.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed):
            return None
        try:
            if endpoint == "lists":
                return _json(self.state.lists())
            if endpoint == "members":
                return _json(_with_contact_id(self.state.members(args["list_id"])))
            if endpoint == "contacts":
                return _json(_with_contact_id(self.state.contacts(request.args.get("email"))))
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise ApiError(400, "a JSON object is required")
            contact = self.state.add_contact(
                _require(body, "email", str),
                first_name=body.get("first_name"),
                last_name=body.get("last_name"),
                list_ids=body.get("list_ids") or [],
                custom_fields=body.get("custom_fields"),
            )
            return _json(contact, 201)
        except ApiError as error:
            return _json(error.body(), error.status)


def _with_contact_id(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inspection rows also name the id ``contact_id``, as export files do."""
    return [{"contact_id": c["id"], **c} for c in contacts]


def _require(body: Any, name: str, kind: type) -> Any:
    """A required body member of the given type (for when validation is off)."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise ApiError(400, f"{name} is required", name)
    return value
