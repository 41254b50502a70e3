"""The attribution results API's OpenAPI 3.1 document (CONTRACT §7).

``python -m services.attribution.openapi`` prints it; the committed copy
(``services/attribution/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import orjson

from shared.events import MODELS
from shared.http import PROBLEM_SCHEMA, operational_paths

_REF = "#/components/schemas/{}"
_NUM = {"type": "number"}
_INT = {"type": "integer", "minimum": 0}
_ID = {"type": "string"}
_NULLABLE_ID = {"type": ["string", "null"]}
_RING = {"type": ["integer", "null"], "description": "0 company, 1 ambassadors, ≥ 2 spillover, "
         "null independent"}  # fmt: skip
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name)}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": properties,
    }
    if description:
        out["description"] = description
    return out


_REACH = {
    "posts": _INT,
    "impressions": _INT,
    "clicks": _INT,
    "mean_impressions_per_post": {"type": ["number", "null"]},
}
_CREDIT_BY_RING = {
    "type": "object",
    "description": 'Credit per ring: "0" company, "1" ambassadors, "2"… spillover rings, '
    '"independent"; every ring up to the deepest one is present.',
    "additionalProperties": _NUM,
}
_INTERVAL = {
    "type": ["array", "null"],
    "items": _NUM,
    "minItems": 2,
    "maxItems": 2,
    "description": "[low, high] at `uncertainty.level`, containing the point value; null "
    "when the point value is null.",
}
_SPEARMAN = {
    "type": ["number", "null"],
    "minimum": -1,
    "maximum": 1,
    "description": "Spearman (mean ranks for ties); null under 5 employees or when either "
    "variable is constant.",
}

SCHEMAS: dict[str, Any] = {
    "Reach": _object(_REACH, "Posts published in the period by this group, latest snapshots."),
    "SpilloverReach": _object({**_REACH, "sharers": _INT}),
    "Summary": _object(
        {
            "period": _object({"from": _NULLABLE_TIME, "to": _NULLABLE_TIME}),
            "model": {"type": "string", "enum": list(MODELS)},
            "company": _ref("Reach"),
            "ambassadors": _ref("Reach"),
            "spillover": _ref("SpilloverReach"),
            "independent": _ref("Reach"),
            "reach_ratio": {"type": ["number", "null"]},
            "applicants": _object(
                {
                    "total": _INT,
                    "attributed": _INT,
                    "unattributed": _INT,
                    "credit_by_ring": _CREDIT_BY_RING,
                    "jobs": {
                        "type": "array",
                        "description": "Per job family of the period's applications (a "
                        "job's family from its latest job.upserted, null if never upserted); "
                        "hard-to-recruit families first, then applicants descending, then "
                        "family (null last).",
                        "items": _object(
                            {
                                "family": {"type": ["string", "null"]},
                                "hard_to_recruit": {"type": "boolean"},
                                "applicants": _INT,
                                "attributed": _INT,
                                "credit": _CREDIT_BY_RING,
                            }
                        ),
                    },
                }
            ),
            "hires": _object(
                {"total": _INT, "attributed": _INT, "credit_by_ring": _CREDIT_BY_RING}
            ),
            "emv": _object({"currency": {"type": "string"}, "value": _NUM}),
            "ripples": _object(
                {
                    "rings": {
                        "type": "array",
                        "items": _object({"ring": _INT, "sharers": _INT}),
                    },
                    "inspired": _INT,
                    "expected_by_chance": _NUM,
                    "baseline_adjusted": _NUM,
                    "lift": {"type": ["number", "null"]},
                }
            ),
            "uncertainty": _object(
                {
                    "method": {"const": "bootstrap"},
                    "level": _NUM,
                    "samples": _INT,
                    "seed": _INT,
                    "reach_ratio": _INTERVAL,
                    "lift": _INTERVAL,
                    "baseline_adjusted": _INTERVAL,
                },
                "A seeded bootstrap (ATTRIBUTION_BOOTSTRAP_SAMPLES, _SEED, _LEVEL): posts "
                "resampled within each group for reach_ratio, the employees of X and of U for "
                "lift and baseline_adjusted; percentile intervals widened to contain the point. "
                "The same data and seed give the same intervals.",
            ),
            "content_origin": _object(
                {
                    "own": _ref("OriginReach"),
                    "suggested": _ref("OriginReach"),
                    "template": _ref("OriginReach"),
                    "own_vs_prepared": {"type": ["number", "null"]},
                    "interval": _INTERVAL,
                },
                "Employee posts of the period by their latest origin; own_vs_prepared = mean "
                "impressions per own post ÷ per prepared (suggested + template) post.",
            ),
            "drivers": _object(
                {
                    "employees": _INT,
                    "followers_spearman": _SPEARMAN,
                    "activity_spearman": _SPEARMAN,
                },
                "Over the employees with a post in the period: mean impressions per post "
                "against followers (those whose latest record has followers) and against "
                "their number of posts.",
            ),
            "scale_up": {
                "type": ["object", "null"],
                "description": "Extension of CONTRACT §10 (issue 17): an estimate, labelled so, "
                "of what ATTRIBUTION_SCALE_UP_AMBASSADORS ambassadors would bring, from the "
                "period's mean per current ambassador (impressions of their posts, applicant "
                "credit under the model) with a bootstrap interval over the ambassadors, times "
                "N; `assumptions` in English and Danish. Null without ambassadors.",
                "required": ["estimate", "ambassadors", "per_ambassador", "targets", "assumptions"],
                "properties": {
                    "estimate": {"const": True},
                    "ambassadors": _INT,
                    "per_ambassador": _object(
                        {
                            "impressions": _NUM,
                            "impressions_interval": _INTERVAL,
                            "applicants": _NUM,
                            "applicants_interval": _INTERVAL,
                        }
                    ),
                    "targets": {
                        "type": "array",
                        "items": _object(
                            {
                                "ambassadors": _INT,
                                "impressions": _NUM,
                                "impressions_interval": _INTERVAL,
                                "applicants": _NUM,
                                "applicants_interval": _INTERVAL,
                            }
                        ),
                    },
                    "assumptions": _object({"en": {"type": "string"}, "da": {"type": "string"}}),
                },
            },
        }
    ),
    "OriginReach": _object(
        {
            "posts": _INT,
            "impressions": _INT,
            "mean_impressions_per_post": {"type": ["number", "null"]},
        }
    ),
    "Sharer": _object(
        {
            "employee_id": _ID,
            "display_name": {"type": ["string", "null"], "description": "null once removed"},
            "ring": _RING,
            "posts": _INT,
            "impressions": _INT,
            "reactions": _INT,
            "comments": _INT,
            "reshares": _INT,
            "clicks": _INT,
            "applicant_credit": _NUM,
            "hire_credit": _NUM,
            "inspired": {"type": "array", "items": _ID},
        }
    ),
    "CreditShare": _object({"employee_id": _NULLABLE_ID, "ring": _RING, "weight": _NUM}),
    "Conversion": _object(
        {
            "applicant_id": _ID,
            "job_id": _ID,
            "applied_at": _NULLABLE_TIME,
            "hired_at": _NULLABLE_TIME,
            "touches": {
                "type": "array",
                "items": _object(
                    {
                        "at": _TIME,
                        "kind": {"type": "string", "enum": ["click", "link_code", "referral"]},
                        "employee_id": _NULLABLE_ID,
                        "link_code": _NULLABLE_ID,
                    }
                ),
            },
            "credit": _object({m: {"type": "array", "items": _ref("CreditShare")} for m in MODELS}),
        }
    ),
    "Ripples": _object(
        {
            "nodes": {
                "type": "array",
                "items": _object(
                    {"employee_id": _ID, "ring": _RING, "first_shared_at": _NULLABLE_TIME}
                ),
            },
            "edges": {
                "type": "array",
                "items": _object(
                    {
                        "from": _ID,
                        "to": _ID,
                        "weight": _NUM,
                        "exposure": {"type": "string", "enum": ["reshare", "engagement"]},
                        "exposed_at": _TIME,
                    }
                ),
            },
        }
    ),
    "Problem": PROBLEM_SCHEMA,
}

_PARAMS = [
    {
        "name": "from",
        "in": "query",
        "required": False,
        "description": "Period start (inclusive), RFC 3339; absent = all time.",
        "schema": _TIME,
    },
    {
        "name": "to",
        "in": "query",
        "required": False,
        "description": "Period end (exclusive), RFC 3339; absent = all time.",
        "schema": _TIME,
    },
    {
        "name": "model",
        "in": "query",
        "required": False,
        "description": "Attribution model (CONTRACT §3).",
        "schema": {"type": "string", "enum": list(MODELS), "default": "last_touch"},
    },
]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, schema: dict[str, Any], *, params: bool, extra: Any = None) -> Any:
    responses: dict[str, Any] = {"200": _ok(schema, summary)}
    if params:
        responses["422"] = _problem("Unknown `model`, or `from`/`to` not RFC 3339.")
    parameters = list(_PARAMS) if params else []
    if extra:
        parameters = [extra, *parameters]
        responses["404"] = _problem("Unknown id.")
    return {"get": {"summary": summary, "tags": ["results"], "parameters": parameters,
                    "responses": responses}}  # fmt: skip


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@functools.cache
def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples attribution results API",
            "version": "1.0.0",
            "description": (
                "Reach, applicant and hire credit and spillover rings (CONTRACT §2-§5, §7). "
                "Every answer is computed from the stored facts, so the same events give "
                "byte-identical answers whatever order they arrived in."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "paths": {
            "/v1/summary": _get("Period summary", _ref("Summary"), params=True),
            "/v1/sharers": _get(
                "Every employee with a post or credit in the period, ordered by applicant "
                "credit, then impressions (descending), then employee_id",
                {"type": "array", "items": _ref("Sharer")},
                params=True,
            ),
            "/v1/sharers/{employee_id}": _get(
                "One sharer", _ref("Sharer"), params=True, extra=_path("employee_id")
            ),
            "/v1/conversions/{applicant_id}": _get(
                "One applicant's touches and credit under every model",
                _ref("Conversion"),
                params=False,
                extra=_path("applicant_id"),
            ),
            "/v1/ripples": _get(
                "The ripple graph: rings and inspirer edges", _ref("Ripples"), params=False
            ),
            **operational_paths("The database answers and partitions are assigned"),
        },
        "components": {"schemas": SCHEMAS},
    }


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
