"""Request validation against the SendGrid OpenAPI documents in ``specs/``.

openapi-core 0.23 finds the operation (by path only: the documents' servers name
api.sendgrid.com) and checks path, query and header parameters. Request bodies are checked
against the same schemas by validators compiled once per operation into plain Python
closures (``schema_compiler``), because openapi-core needs 1.1 to 1.9 s for a 30,000-contact
upsert body (3.6 MB) and the compiled check about 0.04 s. A schema using a keyword or format
the compiler does not know is never skipped: that operation's body falls back to openapi-core.

Stricter than openapi-core on purpose (the sandbox keeps clients honest): undeclared query
parameters, empty path parameters, a body on an operation that takes none, a missing body
where the schema requires properties, and a non-JSON content type are all refused.
Responses are not validated (some published response schemas are wrong).
Messages name the offending field but never echo string values (they may be emails).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.validation.request.exceptions import MissingRequiredParameter
from openapi_core.validation.request.validators import (
    V31RequestBodyValidator,
    V31RequestParametersValidator,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sandbox.schema_compiler import Check, Invalid, SchemaCompiler, Unsupported, format_path

SPEC_DIR = Path(__file__).parent / "specs"
SPEC_FILES = (
    "tsg_mc_contacts_v3.json",
    "tsg_mc_lists_v3.json",
    "tsg_mc_custom_fields_v3.json",
    "tsg_scopes_v3.json",
)
SPEC_HOST = "https://api.sendgrid.com"
PREFIX = "sandbox: request violates the OpenAPI document: "
NO_BODY = object()  # the request carried no body at all


@dataclass(frozen=True)
class Violation:
    """Why a request is refused: the offending field (None for the request as a whole)."""

    field: str | None
    message: str

    def as_error(self) -> dict[str, Any]:
        """Return the SendGrid-style error object for a 400 answer."""
        return {"field": self.field, "message": PREFIX + self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class _SpecRequest:
    """The openapi-core request protocol, pinned to the documents' host so only paths match."""

    host_url = SPEC_HOST

    def __init__(
        self, method: str, path: str, *, query: Any, headers: Any, body: bytes, content_type: str
    ) -> None:
        self.method = method.lower()
        self.path = path
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(headers), cookie=ImmutableMultiDict()
        )


@dataclass
class _Spec:
    document: dict
    parameters: V31RequestParametersValidator
    body: V31RequestBodyValidator
    compiler: SchemaCompiler

    def resolve(self, node: Any) -> Any:
        """Follow a local ``$ref`` (parameters, request bodies) to its target."""
        while isinstance(node, dict) and set(node) == {"$ref"}:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node


class RequestValidator:
    """Checks requests against every SendGrid document in ``spec_dir``.

    Args:
        spec_dir: Folder holding ``SPEC_FILES``.
        compile_bodies: False checks bodies with openapi-core alone (slow; a reference).
    """

    def __init__(self, spec_dir: Path = SPEC_DIR, *, compile_bodies: bool = True) -> None:
        self._compile_bodies = compile_bodies
        self._specs: list[_Spec] = []
        for name in SPEC_FILES:
            document = json.loads((spec_dir / name).read_text())
            spec = SchemaPath.from_dict(document)
            self._specs.append(
                _Spec(
                    document,
                    V31RequestParametersValidator(spec),
                    V31RequestBodyValidator(spec),
                    SchemaCompiler(document),
                )
            )
        self._bodies: dict[tuple[int, str, str], Check | None] = {}

    def validate(
        self,
        method: str,
        path: str,
        *,
        query: Any,
        headers: Any,
        content_type: str | None,
        raw_body: bytes,
        body: Any = NO_BODY,
    ) -> Violation | None:
        """Check one request; return why the documents refuse it, or None.

        Args:
            method: HTTP method.
            path: Request path (no host, no query).
            query: Query parameters as a multi-dict (e.g. ``werkzeug.Request.args``).
            headers: Request headers.
            content_type: The Content-Type header, if any.
            raw_body: The body bytes (only used when falling back to openapi-core).
            body: The body parsed as JSON, or ``NO_BODY``.
        """
        request = _SpecRequest(
            method,
            path,
            query=query,
            headers=headers,
            body=raw_body,
            content_type=content_type or "application/octet-stream",
        )
        found = self._find(request)
        if isinstance(found, Violation):
            return found
        index, spec, result = found
        violation = self._check_parameters(spec, request, result)
        if violation is None:
            violation = self._check_body(
                index,
                spec=spec,
                request=request,
                result=result,
                content_type=content_type,
                body=body,
            )
        return violation

    def _find(self, request: _SpecRequest) -> Violation | tuple[int, _Spec, Any]:
        wrong_method = False
        for index, spec in enumerate(self._specs):
            try:
                result = spec.parameters.path_finder.find(request.method, SPEC_HOST + request.path)
            except OperationNotFound:
                wrong_method = True
            except PathError:
                continue
            else:
                return index, spec, result
        if wrong_method:
            return Violation(None, f"method {request.method.upper()} is not defined for this path")
        return Violation(None, "no such path in the SendGrid documents")

    def _check_parameters(
        self, spec: _Spec, request: _SpecRequest, result: Any
    ) -> Violation | None:
        for name, value in result.path_result.variables.items():
            if not value:
                return Violation(name, "empty path parameter")
        item = spec.document["paths"][result.path.parts[-1]]
        params = [*item.get("parameters", []), *item[request.method].get("parameters", [])]
        declared = {param["name"] for param in map(spec.resolve, params) if param["in"] == "query"}
        for name in request.parameters.query:
            if name not in declared:
                return Violation(name, "query parameter not defined for this operation")
        for error in spec.parameters.iter_errors(request):
            if isinstance(error, MissingRequiredParameter):
                return Violation(error.name, "required parameter is missing")
            name = getattr(error, "name", None)
            cause = error.__cause__
            schema_errors = getattr(cause, "schema_errors", None)
            detail = schema_errors[0].message if schema_errors else str(cause or error)
            return Violation(name, detail[:200])
        return None

    def _check_body(
        self,
        index: int,
        *,
        spec: _Spec,
        request: _SpecRequest,
        result: Any,
        content_type: str | None,
        body: Any,
    ) -> Violation | None:
        template = result.path.parts[-1]
        operation = spec.document["paths"][template][request.method]
        if "requestBody" not in operation:
            if body is not NO_BODY:
                return Violation(None, "this operation takes no request body")
            return None
        request_body = spec.resolve(operation["requestBody"])
        media = request_body.get("content", {}).get("application/json")
        schema = spec.resolve(media.get("schema", True)) if media is not None else None
        if body is NO_BODY:
            if request_body.get("required") or (
                isinstance(schema, dict) and schema.get("required")
            ):
                return Violation(None, "request body is missing")
            return None
        if media is None or not (content_type or "").startswith("application/json"):
            return Violation(None, "Content-Type must be application/json")
        key = (index, template, request.method)
        if key not in self._bodies and not self._compile_bodies:
            self._bodies[key] = None
        if key not in self._bodies:
            try:
                self._bodies[key] = spec.compiler.compile(schema)
            except Unsupported:
                self._bodies[key] = None  # fall back to openapi-core for this operation
        check = self._bodies[key]
        if check is None:
            return self._openapi_core_body(spec, request)
        try:
            check(body, None)
        except Invalid as invalid:
            return Violation(format_path(invalid.path), invalid.message)
        return None

    @staticmethod
    def _openapi_core_body(spec: _Spec, request: _SpecRequest) -> Violation | None:
        for error in spec.body.iter_errors(request):
            schema_errors = getattr(error.__cause__, "schema_errors", None) or []
            if schema_errors:
                first = schema_errors[0]
                where: tuple[Any, Any] | None = None
                for key in first.absolute_path:
                    where = (where, key)
                detail = f"fails {first.validator} {first.validator_value!r}"
                return Violation(format_path(where), detail[:200])
            return Violation(None, str(error)[:200])
        return None
