"""The OpenAPI 3.1 document of /api/v1, generated from hub.web.api.ROUTES.

Paths, methods, parameters and status codes come from the route table, so a route cannot
be added without being documented; the answer bodies are the schemas below (a test checks
every route is here and every documented path answers).
"""

from __future__ import annotations

import re
from typing import Any

from hub.web.api import PREFIX, ROUTES, ApiRoute

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NSTR = {"type": ["string", "null"]}
_NINT = {"type": ["integer", "null"]}
_STRS = {"type": "array", "items": _STR}
_OBJ = {"type": "object"}
_NUM = {"type": "number"}
_STATE = {"type": "string", "enum": ["healthy", "failing", "stale", "disconnected"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "items": _ref(item)}}}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": required if required is not None else list(props)}


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": {**_STR, "description": "What is wrong and what to do."}}),
    "System": _obj({
        "name": _STR, "category": _STR, "owner": _NSTR, "owner_missing": {"type": "boolean"},
        "description": _NSTR, "connector": _NSTR, "state": _STATE,
        "reasons": {**_STRS, "description": "Why it is in that state, in words."},
        "flows": _STRS, "entities_in": _STRS, "entities_out": _STRS, "last_sync": _NSTR,
        "records_today": {**_INT, "description": "Audit events about it since 00:00 UTC."}}),
    "Flow": _obj({
        "name": _STR, "entity": _STR, "sources": _STRS, "targets": _STRS, "direction": _STR,
        "schedule": _NSTR, "enabled": {"type": "boolean"},
        "state": {"type": "string", "enum": ["healthy", "failing", "stale", "disabled"]},
        "reasons": _STRS, "last_success": _NSTR, "last_run_status": _NSTR,
        "failures": _INT, "recent_runs": _INT, "open_dead": _INT, "new_dead": _INT}),
    "Edge": _obj({"flow": _STR, "entity": _STR, "source": _STR, "target": _STR,
                  "two_way": {"type": "boolean"}, "state": _STR}),
    "Coverage": _obj({"connected": _INT, "declared": _INT, "ratio": _NUM,
                      "entities_covered": _STRS, "entities_total": _INT}),
    "SiloMap": _obj({
        "generated_at": _STR, "categories": _STRS,
        "systems": {"type": "array", "items": _ref("System")},
        "flows": {"type": "array", "items": _ref("Flow")},
        "edges": {"type": "array", "items": _ref("Edge")},
        "coverage": _ref("Coverage"),
        "states": {"type": "object", "additionalProperties": _INT}}),
    "Systems": _list("systems", "System"),
    "SystemDetail": _obj({"system": _ref("System"),
                          "flows": {"type": "array", "items": _ref("Flow")}}),
    "Flows": _list("flows", "Flow"),
    "Run": _obj({
        "id": _INT, "flow": _STR, "mode": _STR, "status": _STR, "trigger": _STR,
        "started_at": _STR, "finished_at": _NSTR, "duration_seconds": {"type": ["number",
                                                                                 "null"]},
        "read": _INT, "created": _INT, "updated": _INT, "unchanged": _INT, "skipped": _INT,
        "dead_lettered": _INT, "deleted": _INT, "written": _INT, "write_unchanged": _INT,
        "write_failed": _INT, "pending": _INT,
        "skip_reasons": {"type": "object", "additionalProperties": _INT},
        "error": _NSTR,
        "problem": {**_NSTR, "description": "What went wrong and what to do, in words."}},
        required=["id", "flow", "status", "started_at", "problem"]),
    "Runs": _list("runs", "Run"),
    "RunDetail": _obj({"run": _ref("Run")}),
    "FlowDetail": _obj({"flow": _ref("Flow"), "runs": {"type": "array", "items": _ref("Run")}}),
    "RunQueued": _obj({"flow": _STR, "queued": {"type": "boolean"}, "message": _STR}),
    "DeadLetter": _obj({
        "id": _INT, "run_id": _NINT, "flow": _STR, "system": _STR, "entity": _STR,
        "stage": {"type": "string", "enum": ["read", "map", "validate", "identity", "write"]},
        "external_id": _NSTR, "canonical_id": _NSTR, "error": _STR, "attempts": _INT,
        "first_failed_at": _STR, "last_failed_at": _STR, "status": _STR,
        "resolved_at": _NSTR, "advice": {**_STR, "description": "What to do about it."},
        "payload": {"description": "The record as it was read or written (detail only; "
                                   "secret-looking fields shown as ***)."}},
        required=["id", "flow", "system", "entity", "stage", "error", "status", "advice"]),
    "DeadLetters": _list("dead_letters", "DeadLetter"),
    "DeadLetterDetail": _obj({"dead_letter": _ref("DeadLetter")}),
    "ActionOutcome": _obj({
        "dead_letter": _INT, "status": _STR, "run_id": _NINT,
        "delivered": {"type": "boolean"}, "message": _STR,
        "counts": {"type": "object", "additionalProperties": _INT}}),
    "AuditEvent": _obj({
        "seq": _INT, "at": _STR, "run_id": _NINT, "flow": _NSTR, "entity": _STR,
        "canonical_id": _NSTR, "system": _NSTR, "external_id": _NSTR, "action": _STR,
        "diff": {"type": "object", "description": "field -> [old, new]",
                 "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2}},
        "prev_hash": _STR, "hash": _STR}),
    "AuditEvents": _list("events", "AuditEvent"),
    "AuditVerify": _obj({
        "ok": {"type": ["boolean", "null"],
               "description": "null: checked in the background (see background)."},
        "checked": {**_INT, "description": "Events re-hashed by this request."},
        "bad_seq": _NINT, "message": _STR,
        "trusted": {**_INT, "description": "Events 1..trusted were verified earlier (at "
                    "trusted_at) and not re-read; 0: a full check."},
        "trusted_at": _NSTR,
        "checkpoint": {"type": ["object", "null"], "properties": {
            "seq": _INT, "hash": _STR, "verified_at": _STR, "full_seq": _INT,
            "full_at": _NSTR}},
        "head": _INT, "unverified": _INT,
        "background": {"type": ["object", "null"]}}),
    "AuditVerifyStarted": _obj({"started": {"type": "boolean"}, "message": _STR}),
    "Step": _obj({"kind": {"type": "string", "enum": ["fix-flow", "data-quality",
                                                      "stale-flow", "assign-owner",
                                                      "connect-silo"]},
                  "subject": _STR, "title": _STR, "detail": _STR, "rank": _INT, "link": _STR,
                  "figures": _OBJ}),
    "NextSteps": _list("steps", "Step"),
    "Criterion": _obj({"phase": _INT, "name": _STR, "wanted": _STR, "measured": _STR,
                       "met": {"type": "boolean"}}),
    "Maturity": _obj({
        "phase": {"type": "integer", "minimum": 1, "maximum": 5}, "name": _STR,
        "phases": _STRS, "measures": _OBJ,
        "criteria": {"type": "array", "items": _ref("Criterion")},
        "missing_for_next_phase": {"type": "array", "items": _ref("Criterion")}}),
    "OpenAPI": {"type": "object", "description": "An OpenAPI 3.1 document."},
}

_ERRORS = {400: "A parameter is wrong", 401: "Not signed in",
           403: "Refused (a form or POST from another site, or without its CSRF token)",
           404: "No such thing", 409: "The action could not be done",
           503: "The store is not answering"}


def _operation(r: ApiRoute) -> dict[str, Any]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": _INT if name.endswith("_id") else _STR}
              for name in re.findall(r"{(\w+)}", r.path)]
    for q in r.query:
        schema: dict[str, Any] = {"type": q.type}
        if q.enum:
            schema["enum"] = list(q.enum)
        params.append({"name": q.name, "in": "query", "required": False,
                       "description": q.description, "schema": schema})
    responses: dict[str, Any] = {str(r.status): {
        "description": r.summary,
        "content": {"application/json": {"schema": _ref(r.schema)}}}}
    for code in (*r.errors, 503):
        responses[str(code)] = {"description": _ERRORS[code],
                                "content": {"application/json": {"schema": _ref("Error")}}}
    op: dict[str, Any] = {"summary": r.summary, "operationId": r.handler.__name__,
                          "responses": responses}
    if params:
        op["parameters"] = params
    return op


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    paths: dict[str, Any] = {}
    for r in ROUTES:
        paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = _operation(r)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Liaison hub API", "version": "1",
                 "description": "The dashboard's data: silo map, flows, runs, dead letters, "
                                "audit trail, next steps and maturity. Send "
                                "`Authorization: Bearer <HUB_DASHBOARD_TOKEN>`."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"}}},
        "security": [{"bearer": []}, {"session": []}],
    }
