"""The published JSON Schema of rulebook files, generated from the model and the effects.

Editors (VS Code's YAML extension, IntelliJ) use it for completion and inline errors. It is
generated, never hand-edited: `rulebook schema` prints it and a test checks that the committed
copy in `rules/schema/rulebook.schema.json` is current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.effects import EFFECTS
from rules.model import RulebookFile

SCHEMA_PATH = Path(__file__).parent / "schema" / "rulebook.schema.json"
SCHEMA_ID = "https://rulebook-auditor.invalid/schema/rulebook.schema.json"


def _effect_schema(name: str) -> dict[str, Any]:
    spec = EFFECTS[name]
    props: dict[str, Any] = {"effect": {"const": name, "description": spec.doc}}
    required = ["effect"]
    for arg_name, arg in spec.args.items():
        if arg.kind == "choice":
            prop: dict[str, Any] = {"enum": list(arg.choices)}
        elif arg.kind == "text":
            prop = {"type": "string"}
        elif arg.kind == "bool":
            prop = {"type": ["boolean", "string"]}
        else:
            prop = {"type": ["number", "string"]}
        prop["description"] = arg.doc + (
            "" if arg.kind in ("choice", "text") else f" (an expression giving a {arg.kind})"
        )
        props[arg_name] = prop
        if arg.required:
            required.append(arg_name)
    return {
        "type": "object",
        "title": name,
        "description": f"{spec.doc} Changes: {spec.changes}.",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def rulebook_schema() -> dict[str, Any]:
    schema = RulebookFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["EffectCall"] = {
        "title": "EffectCall",
        "description": "One effect from the closed vocabulary, with its arguments.",
        "oneOf": [_effect_schema(name) for name in sorted(EFFECTS)],
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "Rulebook Auditor rulebook"
    return schema
