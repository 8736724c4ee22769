"""Request validation against the SendGrid OpenAPI documents (sandbox/openapi.py)."""

from __future__ import annotations

import copy
import json
import shutil
from typing import Any

import pytest
from werkzeug.datastructures import Headers, MultiDict

from sandbox.openapi import NO_BODY, SPEC_DIR, SPEC_FILES, RequestValidator, SchemaCompiler

UUID = "3f1c6a3e-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def fast() -> RequestValidator:
    return RequestValidator()


@pytest.fixture(scope="module")
def reference() -> RequestValidator:
    """openapi-core alone checks the bodies."""
    return RequestValidator(compile_bodies=False)


def check(
    validator: RequestValidator,
    method: str,
    path: str,
    body: Any = NO_BODY,
    query: dict | None = None,
    content_type: str | None = "application/json",
):
    raw = b"" if body is NO_BODY else json.dumps(body).encode()
    return validator.validate(
        method,
        path,
        query=MultiDict(query or {}),
        headers=Headers(),
        content_type=content_type if raw else None,
        raw_body=raw,
        body=body,
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "query", "field", "words"),
    [
        ("GET", "/v3/marketing/nothing", NO_BODY, None, None, "no such path"),
        ("PATCH", "/v3/marketing/contacts", {}, None, None, "not defined"),
        ("GET", "/v3/marketing/lists", NO_BODY, {"page_size": "abc"}, "page_size", "number"),
        ("GET", "/v3/marketing/lists", NO_BODY, {"page_size": "1001"}, "page_size", "maximum"),
        ("GET", "/v3/marketing/lists", NO_BODY, {"limit": "5"}, "limit", "not defined"),
        ("DELETE", "/v3/marketing/lists/x/contacts", NO_BODY, None, "contact_ids", "required"),
        ("GET", "/v3/marketing/contacts/imports/", NO_BODY, None, "id", "empty"),
        ("GET", "/v3/scopes", {"a": 1}, None, None, "no request body"),
        ("PUT", "/v3/marketing/contacts", NO_BODY, None, None, "missing"),
        ("PUT", "/v3/marketing/contacts", {"list_ids": []}, None, "contacts", "required"),
        ("PUT", "/v3/marketing/contacts", {"contacts": []}, None, "contacts", "minItems"),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"contacts": [{"email": 5}]},
            None,
            "contacts[0].email",
            "expected string",
        ),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"contacts": [{"email": "a@b.co", "alternate_emails": ["x"] * 6}]},
            None,
            "contacts[0].alternate_emails",
            "maxItems",
        ),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"list_ids": ["nope"], "contacts": [{}]},
            None,
            "list_ids[0]",
            "uuid",
        ),
        (
            "POST",
            "/v3/marketing/contacts/exports",
            {"file_type": "CSV"},
            None,
            "file_type",
            "allowed values",
        ),
        ("POST", "/v3/marketing/field_definitions", {"name": "x"}, None, "field_type", "required"),
        ("POST", "/v3/marketing/lists", {"name": "x" * 101}, None, "name", "maxLength"),
    ],
)
def test_refusals_name_the_field_and_the_rule(fast, method, path, body, query, field, words):
    violation = check(fast, method, path, body, query)
    assert violation is not None
    assert violation.field == field
    assert words in violation.message


def test_wrong_content_type_is_refused(fast):
    violation = check(fast, "POST", "/v3/marketing/lists", {"name": "x"}, content_type="text/plain")
    assert violation is not None
    assert "Content-Type" in violation.message


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("GET", "/v3/marketing/lists", NO_BODY, {"page_size": "1000", "page_token": "abc"}),
        ("GET", "/v3/scopes", NO_BODY, None),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"list_ids": [UUID], "contacts": [{"email": "a@b.co", "custom_fields": {"e1_T": 1}}]},
            None,
        ),
        ("POST", "/v3/marketing/contacts/search/emails", {"emails": ["a@b.co"]}, None),
        ("POST", "/v3/marketing/contacts/exports", {"list_ids": [UUID], "file_type": "json"}, None),
        ("DELETE", "/v3/marketing/lists/x/contacts", NO_BODY, {"contact_ids": "a,b"}),
        ("GET", "/v3/marketing/contacts/exports/abc", NO_BODY, None),
        ("GET", "/v3/marketing/contacts/imports/abc", NO_BODY, None),
    ],
)
def test_requests_the_target_sends_are_accepted(fast, method, path, body, query):
    assert check(fast, method, path, body, query) is None


def test_messages_do_not_echo_string_values(fast):
    secret = "someone.private@example.com" + "x" * 300
    violation = check(fast, "PUT", "/v3/marketing/contacts", {"contacts": [{"email": secret}]})
    assert violation is not None
    assert "private" not in violation.message


def test_every_item_of_a_30000_contact_body_is_checked(fast):
    contacts = [{"email": f"p{i}@example.com", "first_name": "P"} for i in range(30_000)]
    assert check(fast, "PUT", "/v3/marketing/contacts", {"contacts": contacts}) is None
    contacts[-1]["last_name"] = "x" * 51
    violation = check(fast, "PUT", "/v3/marketing/contacts", {"contacts": contacts})
    assert violation is not None
    assert violation.field == "contacts[29999].last_name"


# ----- the compiled body check agrees with openapi-core ----------------------------------


def _documents() -> dict[str, dict]:
    return {name: json.loads((SPEC_DIR / name).read_text()) for name in SPEC_FILES}


def _resolve(document: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
    return node


def _sample(document: dict, schema: Any) -> Any:
    schema = _resolve(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: _sample(document, s) for k, s in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(document, schema.get("items", {}))] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return UUID if schema.get("format") == "uuid" else "x" * max(1, schema.get("minLength", 1))
    return {"integer": 1, "number": 1.5, "boolean": True}[kind]


def _mutations(document: dict, schema: Any, value: Any) -> list[tuple[str, Any, Any]]:
    """(label, path, replacement) edits, each expected to make a valid value invalid or not."""
    schema = _resolve(document, schema)
    edits: list[tuple[str, Any, Any]] = [
        ("null", (), None),
        ("bool", (), True),
        ("int", (), 7),
        ("text", (), "t"),
        ("list", (), ["t"]),
        ("object", (), {"t": 1}),
    ]
    if "maxLength" in schema:
        edits.append(("too long", (), "y" * (schema["maxLength"] + 1)))
        edits.append(("just fits", (), "y" * schema["maxLength"]))
    if "minLength" in schema:
        edits.append(("too short", (), "y" * (schema["minLength"] - 1)))
    if schema.get("format") == "uuid":
        edits.append(("not a uuid", (), "3f1c6a3e00004000800000000000000z"))
    if "enum" in schema:
        edits.append(("not in enum", (), "nope"))
    if "maxItems" in schema and schema["maxItems"] < 100:
        edits.append(("too many", (), value[:1] * (schema["maxItems"] + 1)))
    if "minimum" in schema:
        edits.append(("below minimum", (), schema["minimum"] - 1))
    for name in schema.get("required", []):
        edits.append((f"without {name}", (), {k: v for k, v in value.items() if k != name}))
    if schema.get("type", "object") == "object":
        edits.append(("extra property", (), {**value, "unexpected": "z"}))
        for key, sub in schema.get("properties", {}).items():
            for label, path, new in _mutations(document, sub, value[key]):
                edits.append((f"{key}: {label}", (key, *path), new))
    if schema.get("type") == "array" and value:
        for label, path, new in _mutations(document, schema.get("items", {}), value[0]):
            edits.append((f"[0]: {label}", (0, *path), new))
    return edits


def _apply(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copied = copy.copy(value)
    copied[path[0]] = _apply(value[path[0]], path[1:], new)
    return copied


def _body_operations() -> list[tuple[str, str, str]]:
    found = []
    for name, document in _documents().items():
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and "requestBody" in operation:
                    found.append((name, method, path))
    return found


@pytest.mark.parametrize(("spec", "method", "template"), _body_operations())
def test_compiled_body_check_agrees_with_openapi_core(fast, reference, spec, method, template):
    document = _documents()[spec]
    operation = document["paths"][template][method]
    content = _resolve(document, operation["requestBody"])["content"]
    if "application/json" not in content:
        pytest.skip("not a JSON body")
    schema = content["application/json"]["schema"]
    path = template.replace("{id}", "abc").replace("{custom_field_id}", "e1_T")
    path = path.replace("{identifier_type}", "email").replace("{contact_id}", "abc")
    valid = _sample(document, schema)
    edits = [("as sampled", (), valid), *_mutations(document, schema, valid)]
    assert check(reference, method.upper(), path, valid) is None
    disagreements = []
    for label, where, new in edits:
        body = _apply(valid, where, new)
        ours = check(fast, method.upper(), path, body)
        theirs = check(reference, method.upper(), path, body)
        if (ours is None) != (theirs is None):
            disagreements.append((label, ours, theirs))
    assert disagreements == []
    assert len(edits) > 6


def test_a_schema_the_compiler_cannot_handle_falls_back_to_openapi_core(tmp_path):
    for name in SPEC_FILES:
        shutil.copy(SPEC_DIR / name, tmp_path / name)
    lists = json.loads((tmp_path / "tsg_mc_lists_v3.json").read_text())
    name_schema = lists["paths"]["/v3/marketing/lists"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["name"]
    name_schema["not"] = {"const": "forbidden"}  # a keyword the compiler does not implement
    (tmp_path / "tsg_mc_lists_v3.json").write_text(json.dumps(lists))
    with pytest.raises(Exception, match="not"):
        SchemaCompiler(lists).compile(name_schema)

    validator = RequestValidator(tmp_path)
    violation = check(validator, "POST", "/v3/marketing/lists", {"name": "forbidden"})
    assert violation is not None
    assert violation.field == "name"
    assert check(validator, "POST", "/v3/marketing/lists", {"name": "fine"}) is None
    assert check(validator, "POST", "/v3/marketing/lists", {"name": "x" * 101}) is not None


def test_compiled_check_refuses_properties_the_schema_forbids():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "additionalProperties": False,
        "required": ["name"],
    }
    compiled = SchemaCompiler({}).compile(schema)
    compiled({"name": "x"}, None)
    with pytest.raises(Exception, match="additional property"):
        compiled({"name": "x", "nmae": "y"}, None)


@pytest.mark.parametrize("keyword", [{"minimum": 1}, {"pattern": "^a"}, {"oneOf": [{}]}])
def test_keywords_the_compiler_lacks_are_reported_not_ignored(keyword):
    with pytest.raises(Exception, match=next(iter(keyword))):
        SchemaCompiler({}).compile({"type": "string", **keyword})
