"""The JSON schema of a ``kind`` union, shaped so that Prefect's run form draws it as a kind picker.

Pydantic writes a union discriminated by ``kind`` as ``oneOf`` + ``discriminator``. Prefect 3.6's
form draws that as a JSON box, and the server's check of a bad value says only "is not valid under
any of the given schemas". The form draws ``anyOf`` as a row of buttons, one per member (labelled
by its title), with the chosen member's fields below it. So :class:`KindPicker` turns the union
into:

* ``anyOf``: one member per kind, for the form only: ``kind`` first, titled by the kind, and
  without bounds (so that one bad field does not fail every member at once, which is the message
  that names nothing). The form tells which button a value belongs to by which member has most
  of the value's keys, the first on a tie: members are ordered by their number of fields, and
  kinds with the very same fields (benchmarks that differ only in defaults) share one button
  whose ``kind`` is a select, without the defaults they differ in (an empty field takes the
  kind's own; a toggle cannot be empty, so its description says each kind's default).
* ``if kind == …`` → ``then`` the kind's own (pydantic's) schema, chained through ``else``, ending
  in the enum of kinds. The form's own check does not use these, but the server's check of a
  triggered run does: Submit with a bad value is refused with "Validation failed for field
  'config.source.num_scenes'…", shown by the UI.

Nothing changes for pydantic: the union still validates by its discriminator.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# Keywords that only constrain values: the form's members go without them.
_BOUNDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "additionalProperties",
    }
)
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


class KindPicker:
    """Annotation for a union discriminated by ``kind``: its JSON schema becomes a picker (see the module)."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        refs = schema.pop("oneOf")
        schema.pop("discriminator")
        kinds = [handler.resolve_ref_schema(ref)["properties"]["kind"]["const"] for ref in refs]
        schema["anyOf"] = _members([_form_member(handler.resolve_ref_schema(ref), handler) for ref in refs])
        schema.update(_validation(list(zip(kinds, refs, strict=True))))
        return schema


def _form_member(schema: JsonSchemaValue, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    """A member as the form shows it: titled by its kind, ``kind`` first, without bounds, nested models inlined."""
    member = _unbounded(schema, handler)
    properties = member["properties"]
    member["properties"] = {"kind": properties["kind"], **properties}
    member["title"] = properties["kind"]["const"]
    return member


def _unbounded(schema: Any, handler: GetJsonSchemaHandler) -> Any:
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        schema = {
            **handler.resolve_ref_schema({"$ref": schema["$ref"]}),
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    out = {key: value for key, value in schema.items() if key not in _BOUNDS}
    if "properties" in out:
        out["properties"] = {name: _unbounded(sub, handler) for name, sub in out["properties"].items()}
    if "items" in out:
        out["items"] = _unbounded(out["items"], handler)
    for key in _SUBSCHEMA_LISTS:
        if key in out:
            out[key] = [_unbounded(sub, handler) for sub in out[key]]
    return out


def _members(members: list[JsonSchemaValue]) -> list[JsonSchemaValue]:
    """Kinds with the same fields merged into one member; members with fewer fields first (see the module)."""
    groups: dict[tuple[str, ...], list[JsonSchemaValue]] = {}
    for member in members:
        groups.setdefault(tuple(sorted(member["properties"])), []).append(member)
    merged = [group[0] if len(group) == 1 else _merged(group) for group in groups.values()]
    return sorted(merged, key=lambda member: len(member["properties"]))


def _merged(group: list[JsonSchemaValue]) -> JsonSchemaValue:
    """One member for kinds with the same fields: ``kind`` becomes a select; defaults that differ by kind are
    left out (an empty field takes the kind's own) and listed in the field's description."""
    kinds = [member["properties"]["kind"]["const"] for member in group]
    first = group[0]
    properties: dict[str, Any] = {"kind": {"title": "Kind", "type": "string", "enum": kinds, "default": kinds[0]}}
    for name, field in first["properties"].items():
        if name == "kind":
            continue
        defaults = {kind: member["properties"][name].get("default") for kind, member in zip(kinds, group, strict=True)}
        if len({json.dumps(default) for default in defaults.values()}) > 1:
            per_kind = "; ".join(f"{kind}: {json.dumps(default)}" for kind, default in defaults.items())
            description = f"{field.get('description', '')} Default by kind: {per_kind}.".strip()
            field = {**{k: v for k, v in field.items() if k != "default"}, "description": description}
        properties[name] = field
    return {
        **first,
        "title": " · ".join(kinds),
        "description": " ".join(member.get("description", "") for member in group).strip(),
        "properties": properties,
    }


def _validation(members: list[tuple[str, JsonSchemaValue]]) -> JsonSchemaValue:
    """``if kind == k then <k's schema> else …``, ending in the enum of kinds."""
    chain: JsonSchemaValue = {"properties": {"kind": {"enum": [kind for kind, _ in members]}}, "required": ["kind"]}
    for kind, ref in reversed(members):
        chain = {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": ref, "else": chain}
    return chain
