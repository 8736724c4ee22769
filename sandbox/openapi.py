"""Request validation against the SendGrid OpenAPI documents in ``specs/``.

openapi-core 0.23 finds the operation (by path only: the documents' servers name
api.sendgrid.com) and checks path, query and header parameters. Request bodies are checked
against the same schemas by validators compiled once per operation into plain Python
closures, because openapi-core needs 1.1 to 1.9 s for a 30,000-contact upsert body (3.6 MB)
and the compiled check about 0.04 s. A schema using a keyword or format the
compiler does not know is never skipped: that operation's body falls back to openapi-core.

Stricter than openapi-core on purpose (the sandbox keeps clients honest): undeclared query
parameters, empty path parameters, a body on an operation that takes none, a missing body
where the schema requires properties, and a non-JSON content type are all refused.
Responses are not validated (some published response schemas are wrong).
Messages name the offending field but never echo string values (they may be emails).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
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

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "example",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$comment",
    }
)


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


class _Unsupported(Exception):
    """The schema uses something the compiler does not implement."""


class _Invalid(Exception):
    def __init__(self, path: tuple | None, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


Check = Callable[[Any, Any], None]  # (value, path) -> None or raises _Invalid


def format_path(path: tuple | None) -> str | None:
    """Turn a linked path ``(((None, "contacts"), 3), "email")`` into ``contacts[3].email``."""
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    text = ""
    for key in reversed(parts):
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return name == "number" or (name == "integer" and float(value).is_integer())


def _is_uuid(value: Any) -> bool:
    # the same rule as jsonschema's "uuid" format checker
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return all(value[i] == "-" for i in (8, 13, 18, 23))


_FORMATS: dict[str, Callable[[Any], bool]] = {"uuid": _is_uuid}


class SchemaCompiler:
    """Compiles a JSON Schema (OpenAPI 3.1 dialect subset) into a fast checking closure."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self._refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        """Return a closure ``check(value, path)`` raising on the first violation.

        Raises:
            _Unsupported: when the schema uses a keyword or format not implemented here.
        """
        if schema is True or schema == {}:
            return _accept
        if schema is False:
            return _refuse
        if not isinstance(schema, dict):
            raise _Unsupported(repr(schema))
        if schema.get("type") == "string" and schema.keys() <= {"type", "maxLength", *_ANNOTATIONS}:
            return self._string(schema.get("maxLength"))
        checks: list[Check] = []
        for key, arg in schema.items():
            if key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if key == "properties":
                continue  # handled with additionalProperties below
            builder = getattr(self, "_kw_" + key.lstrip("$"), None)
            if builder is None:
                raise _Unsupported(key)
            checks.append(builder(arg, schema))
        if "properties" in schema and "additionalProperties" not in schema:
            checks.append(self._kw_additionalProperties(True, schema))
        if len(checks) == 1:
            return checks[0]

        def all_of(value: Any, path: Any) -> None:
            for check in checks:
                check(value, path)

        return all_of

    def _kw_ref(self, ref: str, _schema: dict) -> Check:
        if not ref.startswith("#/"):
            raise _Unsupported(ref)
        if ref not in self._refs:
            target: Any = self._document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            cell: list[Check] = []

            def deferred(value: Any, path: Any) -> None:  # lets a schema refer to itself
                cell[0](value, path)

            self._refs[ref] = deferred
            cell.append(self.compile(target))
            self._refs[ref] = cell[0]
        return self._refs[ref]

    def _kw_type(self, names: str | list[str], _schema: dict) -> Check:
        wanted = [names] if isinstance(names, str) else list(names)
        python_type = {"string": str, "object": dict, "array": list}.get(wanted[0])
        if len(wanted) == 1 and python_type is not None:

            def check_simple(value: Any, path: Any) -> None:
                if not isinstance(value, python_type):
                    raise _Invalid(path, f"expected {wanted[0]}, got {_type_name(value)}")

            return check_simple

        def check(value: Any, path: Any) -> None:
            if not any(_is_type(value, name) for name in wanted):
                raise _Invalid(path, f"expected {' or '.join(wanted)}, got {_type_name(value)}")

        return check

    @staticmethod
    def _string(limit: int | None) -> Check:
        """The commonest schema, ``{"type": "string", "maxLength": n}``, as one closure."""

        def check(value: Any, path: Any) -> None:
            if not isinstance(value, str):
                raise _Invalid(path, f"expected string, got {_type_name(value)}")
            if limit is not None and len(value) > limit:
                raise _Invalid(path, f"longer than maxLength {limit} ({len(value)} characters)")

        return check

    def _kw_enum(self, options: list, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            # JSON equality: 1 == 1.0, but true is not 1
            if not any(
                value == o and isinstance(value, bool) == isinstance(o, bool) for o in options
            ):
                raise _Invalid(path, f"not one of the allowed values {options}")

        return check

    def _kw_format(self, name: str, _schema: dict) -> Check:
        test = _FORMATS.get(name)
        if test is None:
            raise _Unsupported("format " + name)

        def check(value: Any, path: Any) -> None:
            if not test(value):
                raise _Invalid(path, f"not a valid {name}")

        return check

    def _kw_minLength(self, limit: int, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if isinstance(value, str) and len(value) < limit:
                raise _Invalid(path, f"shorter than minLength {limit} ({len(value)} characters)")

        return check

    def _kw_maxLength(self, limit: int, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if isinstance(value, str) and len(value) > limit:
                raise _Invalid(path, f"longer than maxLength {limit} ({len(value)} characters)")

        return check

    def _kw_minItems(self, limit: int, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if isinstance(value, list) and len(value) < limit:
                raise _Invalid(path, f"{len(value)} items, fewer than minItems {limit}")

        return check

    def _kw_maxItems(self, limit: int, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if isinstance(value, list) and len(value) > limit:
                raise _Invalid(path, f"{len(value)} items, more than maxItems {limit}")

        return check

    def _kw_uniqueItems(self, unique: bool, _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if unique and isinstance(value, list):
                seen = [json.dumps(v, sort_keys=True) for v in value]
                if len(set(seen)) != len(seen):
                    raise _Invalid(path, "items are not unique")

        return check if unique else _accept

    def _kw_items(self, items: Any, _schema: dict) -> Check:
        if not isinstance(items, (dict, bool)):
            raise _Unsupported("items as a list")
        item_check = self.compile(items)

        def check(value: Any, path: Any) -> None:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    item_check(item, (path, index))

        return check

    def _kw_required(self, names: list[str], _schema: dict) -> Check:
        def check(value: Any, path: Any) -> None:
            if isinstance(value, dict):
                for name in names:
                    if name not in value:
                        raise _Invalid((path, name), "required property is missing")

        return check

    def _kw_additionalProperties(self, extra: Any, schema: dict) -> Check:
        known = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        extra_check = None if extra is True else self.compile(extra)

        def check(value: Any, path: Any) -> None:
            if not isinstance(value, dict):
                return
            for key, item in value.items():
                sub = known.get(key)
                if sub is not None:
                    sub(item, (path, key))
                elif extra is False:
                    raise _Invalid((path, key), "additional property not allowed")
                elif extra_check is not None:
                    extra_check(item, (path, key))

        return check


def _accept(_value: Any, _path: Any) -> None:
    return None


def _refuse(_value: Any, path: Any) -> None:
    raise _Invalid(path, "no value is allowed here")


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
            except _Unsupported:
                self._bodies[key] = None  # fall back to openapi-core for this operation
        check = self._bodies[key]
        if check is None:
            return self._openapi_core_body(spec, request)
        try:
            check(body, None)
        except _Invalid as invalid:
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
