"""Validate request bodies against Pinterest's own published schema (OpenAPI 5.23.0).

The JSON beside this file is the events part of Pinterest's OpenAPI description, unchanged
(see README.md).  It uses ``$defs`` and ``$ref`` with sibling keywords (the user_data
``anyOf``), which only JSON Schema 2019-09+ honours, so it is read as draft 2020-12.
OpenAPI's ``nullable`` is not a JSON Schema keyword and is ignored: a ``null`` where the
schema says ``string`` fails here, which is stricter than Pinterest and what we want anyway
(the app omits absent fields).  Where the published schema is silent (for example it does not
forbid unknown keys inside ``user_data``) this validates exactly what Pinterest publishes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SCHEMA_PATH = Path(__file__).with_name("events-openapi-5.23.json")
SCHEMA_URI = "urn:pinterest:api-description:5.23.0:events"
REQUEST_POINTER = "#/$defs/ConversionEvents"
EVENT_POINTER = "#/$defs/ConversionEvents/properties/data/items"


def load_schema() -> dict[str, Any]:
    """The whole schema document as published (request, responses and $defs)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator(pointer: str) -> Draft202012Validator:
    registry = Registry().with_resource(SCHEMA_URI, DRAFT202012.create_resource(load_schema()))
    return Draft202012Validator({"$ref": SCHEMA_URI + pointer}, registry=registry)


def validate_request_body(body: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless ``body`` is a valid ``{"data": [...]}`` request."""
    _validator(REQUEST_POINTER).validate(body)


def validate_event_dict(event: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless ``event`` is a valid item of ``data``."""
    _validator(EVENT_POINTER).validate(event)
