"""The attribution results API's OpenAPI 3.1 document (CONTRACT §7).

``python -m services.attribution.openapi`` prints it; the committed copy
(``services/attribution/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import orjson

from services.attribution.report import FORMATS, LOCALES, MEDIA_TYPES
from services.attribution.settings import AttributionSettings
from shared.events import MODELS
from shared.openapi import (
    BEARER,
    LICENSE,
    OPEN,
    components,
    invalid_parameter,
    json_body,
    not_found,
    operational_paths,
    problem,
    unauthorized,
    unavailable,
)
from shared.params import IDENTIFIER_SCHEMA

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
    "MyRipples": _object(
        {
            "employee_id": _ID,
            "from": _TIME,
            "to": _TIME,
            "posts": {
                "type": "array",
                "description": "The employee's own posts published in the period, oldest "
                "first; reach from each post's latest snapshot (0 if never seen).",
                "items": _object(
                    {
                        "post_id": _ID,
                        "published_at": _TIME,
                        "origin": {"type": "string", "enum": ["own", "suggested", "template"]},
                        "impressions": _INT,
                        "reactions": _INT,
                        "comments": _INT,
                        "reshares": _INT,
                    }
                ),
            },
            "inspired": _object(
                {
                    "total": _INT,
                    "by_ring": {
                        "type": "object",
                        "description": "Colleagues the employee's ripple reached, by "
                        'distance along the inspirer edges: "1" = colleagues naming the '
                        'employee as inspirer (CONTRACT §2), "2" = colleagues naming one of '
                        "those, and so on (each counted once, at its shortest distance), when "
                        'their first share is in the period. "1" is always there, then every '
                        "distance up to the farthest reached.",
                        "properties": {"1": _INT},
                        "required": ["1"],
                        "additionalProperties": _INT,
                    },
                },
                "Counts only: never who. `total` = the sum of `by_ring`.",
            ),
            "applicants": _object(
                {"attributed": _INT, "credit": _NUM},
                "Applications of the period (by applied_at) in which the employee has credit "
                "> 0 under the model, and the sum of that credit; counts only.",
            ),
            "hires": _object(
                {"attributed": _INT, "credit": _NUM},
                "Hires of the period (by hired_at), credited like their application.",
            ),
            "reach": _object(
                {"impressions": _INT, "emv": _NUM},
                "The period's posts: impressions, and their earned media value "
                "(impressions ÷ 1000 × CPM + clicks × CPC, in ATTRIBUTION_CURRENCY).",
            ),
        },
        "One employee's own figures for their page (v1.1, CONTRACT §11): counts only, never "
        "another person's id or name.",
    ),
}

_PARAMS = [
    {
        "name": "from",
        "in": "query",
        "required": False,
        "description": "Period start (inclusive), RFC 3339 with `Z` or an offset, with a UTC "
        "equivalent in years 1-9999; absent = all time. Must be before `to`.",
        "schema": _TIME,
        "example": "2026-06-01T00:00:00Z",
    },
    {
        "name": "to",
        "in": "query",
        "required": False,
        "description": "Period end (exclusive), RFC 3339 as `from`; absent = all time.",
        "schema": _TIME,
        "example": "2026-09-01T00:00:00+02:00",
    },
    {
        "name": "model",
        "in": "query",
        "required": False,
        "description": "Attribution model (CONTRACT §3).",
        "schema": {"type": "string", "enum": list(MODELS), "default": "last_touch"},
    },
]

_REACH_EXAMPLE = {"posts": 4, "impressions": 2400, "clicks": 31, "mean_impressions_per_post": 600.0}
_SHARER_EXAMPLE = {
    "employee_id": "emp-1",
    "display_name": "Mette Jensen",
    "ring": 1,
    "posts": 3,
    "impressions": 5200,
    "reactions": 140,
    "comments": 22,
    "reshares": 9,
    "clicks": 61,
    "applicant_credit": 1.5,
    "hire_credit": 1.0,
    "inspired": ["emp-7"],
}
_EXAMPLES: dict[str, Any] = {
    "Summary": {
        "period": {"from": "2026-06-01T00:00:00Z", "to": "2026-09-01T00:00:00Z"},
        "model": "last_touch",
        "company": {**_REACH_EXAMPLE, "impressions": 1200, "mean_impressions_per_post": 300.0},
        "ambassadors": _REACH_EXAMPLE,
        "spillover": {**_REACH_EXAMPLE, "posts": 2, "mean_impressions_per_post": 1200.0,
                      "sharers": 2},
        "independent": {"posts": 0, "impressions": 0, "clicks": 0,
                        "mean_impressions_per_post": None},
        "reach_ratio": 2.0,
        "applicants": {
            "total": 12,
            "attributed": 7,
            "unattributed": 5,
            "credit_by_ring": {"0": 2.0, "1": 4.0, "2": 1.0, "independent": 0.0},
            "jobs": [
                {"family": "engineering", "hard_to_recruit": True, "applicants": 7,
                 "attributed": 5, "credit": {"0": 1.0, "1": 3.0, "2": 1.0, "independent": 0.0}},
                {"family": None, "hard_to_recruit": False, "applicants": 5, "attributed": 2,
                 "credit": {"0": 1.0, "1": 1.0, "2": 0.0, "independent": 0.0}},
            ],
        },
        "hires": {"total": 2, "attributed": 1,
                  "credit_by_ring": {"0": 0.0, "1": 1.0, "2": 0.0, "independent": 0.0}},
        "emv": {"currency": "DKK", "value": 2296.0},
        "ripples": {
            "rings": [{"ring": 1, "sharers": 8}, {"ring": 2, "sharers": 2}],
            "inspired": 2,
            "expected_by_chance": 0.5,
            "baseline_adjusted": 1.5,
            "lift": 4.0,
        },
        "uncertainty": {"method": "bootstrap", "level": 0.95, "samples": 2000, "seed": 1,
                        "reach_ratio": [1.2, 3.4], "lift": [1.1, 9.0],
                        "baseline_adjusted": [0.4, 2.0]},
        "content_origin": {
            "own": {"posts": 3, "impressions": 2100, "mean_impressions_per_post": 700.0},
            "suggested": {"posts": 1, "impressions": 300, "mean_impressions_per_post": 300.0},
            "template": {"posts": 0, "impressions": 0, "mean_impressions_per_post": None},
            "own_vs_prepared": 2.3333333333,
            "interval": [1.5, 4.1],
        },
        "drivers": {"employees": 6, "followers_spearman": 0.2, "activity_spearman": 0.6},
        "scale_up": {
            "estimate": True,
            "ambassadors": 8,
            "per_ambassador": {"impressions": 300.0, "impressions_interval": [200.0, 410.0],
                               "applicants": 0.5, "applicants_interval": [0.25, 0.75]},
            "targets": [{"ambassadors": 20, "impressions": 6000.0,
                         "impressions_interval": [4000.0, 8200.0], "applicants": 10.0,
                         "applicants_interval": [5.0, 15.0]}],
            "assumptions": {"en": "Each new ambassador posts like today's.",
                            "da": "Hver ny ambassadør poster som dagens."},
        },
    },
    "Sharer": _SHARER_EXAMPLE,
    "Sharers": [_SHARER_EXAMPLE],
    "Conversion": {
        "applicant_id": "ap-3f9c",
        "job_id": "job-42",
        "applied_at": "2026-06-05T14:22:53Z",
        "hired_at": None,
        "touches": [
            {"at": "2026-06-03T10:00:00Z", "kind": "click", "employee_id": "emp-1",
             "link_code": "aB3xY9"},
        ],
        "credit": {m: [{"employee_id": "emp-1", "ring": 1, "weight": 1.0}] for m in MODELS},
    },
    "Ripples": {
        "nodes": [
            {"employee_id": "emp-1", "ring": 1, "first_shared_at": "2026-06-03T08:15:00Z"},
            {"employee_id": "emp-7", "ring": 2, "first_shared_at": "2026-06-04T09:00:00Z"},
        ],
        "edges": [
            {"from": "emp-1", "to": "emp-7", "weight": 1.0, "exposure": "reshare",
             "exposed_at": "2026-06-04T09:00:00Z"},
        ],
    },
    "MyRipples": {
        "employee_id": "emp-1",
        "from": "2026-06-01T00:00:00Z",
        "to": "2026-08-30T00:00:00Z",
        "posts": [
            {"post_id": "urn:li:share:7", "published_at": "2026-06-03T08:15:00Z",
             "origin": "own", "impressions": 2000, "reactions": 30, "comments": 5,
             "reshares": 2},
        ],
        "inspired": {"total": 3, "by_ring": {"1": 1, "2": 2}},
        "applicants": {"attributed": 2, "credit": 0.666666666667},
        "hires": {"attributed": 1, "credit": 0.333333333333},
        "reach": {"impressions": 2000, "emv": 1240.0},
    },
}  # fmt: skip

_BAD_PERIOD = invalid_parameter(
    "A bad query parameter, named in `errors[].field`: an empty value, control characters, "
    "`from`/`to` not RFC 3339, without a UTC equivalent or `from` not before `to`, an "
    "unknown `model`.",
    "from",
    "has no UTC equivalent (out of range)",
)
_BAD_ID = invalid_parameter(
    "A bad path parameter: empty, over 256 characters or with control characters.",
    "employee_id",
    "must not contain control characters",
)
_DOWN = unavailable("The database is unavailable; retry after `Retry-After` seconds.")


def _get(
    operation_id: str,
    summary: str,
    schema: dict[str, Any],
    example: Any,
    *,
    params: bool,
    path: str | None = None,
) -> Any:
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": json_body(schema, example)},
        "401": unauthorized(),
    }
    parameters: list[dict[str, Any]] = list(_PARAMS) if params else []
    if path:
        parameters = [_path(path), *parameters]
        responses["404"] = not_found(f"no such {path.removesuffix('_id')}")
    if params or path:
        responses["422"] = _BAD_PERIOD if params else _BAD_ID
    responses["503"] = _DOWN
    operation = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["results"],
        "security": BEARER,
        "parameters": parameters,
        "responses": responses,
    }
    return {"get": operation}


def _path(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": "1-256 characters, no control characters.",
        "schema": IDENTIFIER_SCHEMA,
        "example": "emp-1" if name == "employee_id" else "ap-3f9c",
    }


def _my_ripples_path() -> dict[str, Any]:
    """The employee's own figures, fetched server-side by their page (ingest, CONTRACT §11)."""
    parameters = [
        _path("employee_id"),
        {
            "name": "from",
            "in": "query",
            "required": False,
            "description": "Period start (inclusive), RFC 3339 as for `/v1/summary`; absent = "
            "90 days before `to`. Must be before `to`.",
            "schema": _TIME,
            "example": "2026-06-01T00:00:00Z",
        },
        {
            "name": "to",
            "in": "query",
            "required": False,
            "description": "Period end (exclusive); absent = now (then `from`, if given, "
            "must be in the past).",
            "schema": _TIME,
            "example": "2026-08-30T00:00:00Z",
        },
        {
            "name": "model",
            "in": "query",
            "required": False,
            "description": "Attribution model of the credit (CONTRACT §3); linear by default.",
            "schema": {"type": "string", "enum": list(MODELS), "default": "linear"},
        },
    ]
    summary = "One employee's own figures for their page: posts, reach, colleagues inspired, "
    summary += "applicants and hires credited (counts only)"
    return {
        "get": {
            "operationId": "getEmployeeRipples",
            "summary": summary,
            "description": "v1.1 (CONTRACT §11, the employee's page): the figures the page "
            "shows, answered from the derived tables. Counts only: the body never holds "
            "another person's id or name.",
            "tags": ["results"],
            "security": BEARER,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The employee's figures of the period.",
                    "content": json_body(_ref("MyRipples"), _EXAMPLES["MyRipples"]),
                },
                "401": unauthorized(),
                "404": not_found("no such employee"),
                "422": invalid_parameter(
                    "A bad parameter, named in `errors[].field`: `employee_id` empty, over 256 "
                    "characters or with control characters; `from`/`to` as for `/v1/summary` "
                    "(`from` before `to`, `from` in the past when `to` is absent); an unknown "
                    "`model`.",
                    "from",
                    "must be an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z",
                ),
                "503": _DOWN,
            },
        }
    }


_MAX_EXPIRES_S = AttributionSettings.report_link_max_expires_s
_DEFAULT_EXPIRES_S = 7 * 86400
_LOCALE = {
    "name": "locale",
    "in": "query",
    "required": False,
    "description": "The report's language: English or Danish.",
    "schema": {"type": "string", "enum": list(LOCALES), "default": "en"},
}
_FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "HTML (the page), PDF (the HTML printed), CSV (the tables) or Markdown.",
    "schema": {"type": "string", "enum": list(FORMATS), "default": "html"},
}
_CONTENT_LANGUAGE = {
    "description": "The report's locale (`en` or `da`).",
    "required": True,
    "schema": {"type": "string", "enum": list(LOCALES)},
    "example": "da",
}
_HTML_EXAMPLE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    "<title>Ripples report</title></head><body><h1>Ripples report</h1>…</body></html>\n"
)
_REPORT_EXAMPLES = {
    "html": _HTML_EXAMPLE,
    "pdf": "%PDF-1.7\n…",
    "csv": "section,key,value\nsummary,reach_ratio,2.0\n…",
    "md": "# Ripples report\n\n| | posts | impressions |\n|---|---|---|\n…",
}
_TEXT = {"type": "string"}
_LINK_HEADERS = {
    "Cache-Control": ("`no-store`: the page's URL carries its token.", "no-store"),
    "Referrer-Policy": ("`no-referrer`: the token is never sent on.", "no-referrer"),
    "X-Robots-Tag": ("`noindex`.", "noindex"),
}


def _header(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": _TEXT, "example": example}


def _report_media(fmt: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt == "pdf":
        schema["contentMediaType"] = "application/pdf"
    return {MEDIA_TYPES[fmt]: {"schema": schema, "example": _REPORT_EXAMPLES[fmt]}}


def _bad_body(field: str, detail: str) -> dict[str, Any]:
    return problem(
        422,
        "A bad body, named in `errors[].field`: `body` when it is not a JSON object; a field "
        "of the wrong type; `from`/`to` as for `GET /v1/report` (RFC 3339 with a UTC "
        "equivalent, `from` before `to`); an unknown `model` or `locale`; `expires_in_s` "
        f"outside 60 to ATTRIBUTION_REPORT_LINK_MAX_EXPIRES_S (default {_MAX_EXPIRES_S}).",
        "invalid-body",
        "Invalid request body",
        f"`{field}`: {detail}",
        errors=[{"field": field, "detail": detail}],
        naming=True,
    )


def _report_paths() -> dict[str, Any]:
    """CONTRACT §9: the served report, its share links and the page a link opens
    (services/attribution/report/routes.py)."""
    link_request = {
        "type": "object",
        "description": "Every field is optional: the period (absent = all time), the model "
        "and locale of the report the link opens, and how long the link lives.",
        "properties": {
            "from": {**_TIME, "description": "Period start (inclusive), as the query's `from`."},
            "to": {**_TIME, "description": "Period end (exclusive), as the query's `to`."},
            "model": {"type": "string", "enum": list(MODELS), "default": "last_touch"},
            "locale": {"type": "string", "enum": list(LOCALES), "default": "en"},
            "expires_in_s": {
                "type": "integer",
                "minimum": 60,
                "maximum": _MAX_EXPIRES_S,
                "default": _DEFAULT_EXPIRES_S,
                "description": "Seconds the link lives: 60 to "
                "ATTRIBUTION_REPORT_LINK_MAX_EXPIRES_S (default 90 days; a deployment may "
                "set up to 366); absent = 7 days, or that maximum if it is shorter.",
            },
        },
    }
    link = _object(
        {
            "url": {
                "type": "string",
                "format": "uri",
                "description": "`ATTRIBUTION_PUBLIC_BASE_URL` + `/reports/{token}`: opens the "
                "report without a key until `expires_at`.",
            },
            "expires_at": {**_TIME, "description": "When the link stops opening (UTC)."},
        }
    )
    bad_query = invalid_parameter(
        "A bad query parameter, named in `errors[].field`: as for `/v1/summary`, and an "
        "unknown `locale` or `format`.",
        "format",
        "must be one of html, pdf, csv, md",
    )
    down = unavailable("The database is unavailable; retry after `Retry-After` seconds.")
    ok_headers = {
        "Content-Language": _CONTENT_LANGUAGE,
        "Content-Disposition": {
            "description": "PDF, CSV and Markdown only: "
            '`inline; filename="ripples-report-{locale}.{format}"`.',
            "required": False,
            "schema": _TEXT,
            "example": 'inline; filename="ripples-report-da.pdf"',
        },
    }
    page_headers = {name: _header(*value) for name, value in _LINK_HEADERS.items()}
    return {
        "/v1/report": {
            "get": {
                "operationId": "getReport",
                "summary": "The period report (CONTRACT §9) in HTML, PDF, CSV or Markdown",
                "description": "The summary, the sharers, the ripple graph and one row per "
                "week of the period (at most 105), in English or Danish.",
                "tags": ["report"],
                "security": BEARER,
                "parameters": [*_PARAMS, _LOCALE, _FORMAT],
                "responses": {
                    "200": {
                        "description": "The report in `format` and `locale`.",
                        "headers": ok_headers,
                        "content": {k: v for fmt in FORMATS for k, v in _report_media(fmt).items()},
                    },
                    "401": unauthorized(),
                    "422": bad_query,
                    "503": down,
                },
            }
        },
        "/v1/report/links": {
            "post": {
                "operationId": "createReportLink",
                "summary": "A signed, expiring share link to the report (HTML)",
                "tags": ["report"],
                "security": BEARER,
                "requestBody": {
                    "required": False,
                    "description": "A JSON object of at most 16 KiB; an empty body is `{}`.",
                    "content": json_body(
                        link_request,
                        {
                            "from": "2026-06-01T00:00:00Z",
                            "to": "2026-09-01T00:00:00Z",
                            "model": "linear",
                            "locale": "da",
                            "expires_in_s": 86400,
                        },
                    ),
                },
                "responses": {
                    "201": {
                        "description": "The link.",
                        "content": json_body(
                            link,
                            {
                                "url": "http://127.0.0.1:8081/reports/eyJmIjpudWxsfQ.c2lnbmF0dXJl",
                                "expires_at": "2026-09-08T00:00:00Z",
                            },
                        ),
                    },
                    "400": problem(
                        400,
                        "`Content-Length` is not a number.",
                        "bad-request",
                        "Bad request",
                        "Content-Length is not a number",
                    ),
                    "401": unauthorized(),
                    "413": problem(
                        413,
                        "The body is over 16 KiB.",
                        "body-too-large",
                        "Request body too large",
                        "the body must not exceed 16384 bytes",
                    ),
                    "422": _bad_body(
                        "expires_in_s", f"must be a whole number from 60 to {_MAX_EXPIRES_S}"
                    ),
                    "503": problem(
                        503,
                        "Share links are not configured: ATTRIBUTION_REPORT_LINK_SECRET is "
                        "not set (retrying will not help until it is).",
                        "not-configured",
                        "Share links not configured",
                        "set ATTRIBUTION_REPORT_LINK_SECRET to make report share links",
                    ),
                },
            }
        },
        "/reports/{token}": {
            "get": {
                "operationId": "openReportLink",
                "summary": "The report a share link opens (a browser page; no key)",
                "description": "Checked by its token (signed with "
                "ATTRIBUTION_REPORT_LINK_SECRET, expiring): the HTML report in the link's "
                "period, model and locale, never cached.",
                "tags": ["report"],
                "security": OPEN,
                "parameters": [
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "description": "The token of a URL from `POST /v1/report/links`.",
                        "schema": {"type": "string", "minLength": 1},
                        "example": "eyJmIjpudWxsfQ.c2lnbmF0dXJl",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The report (HTML) in the link's locale.",
                        "headers": {
                            **page_headers,
                            "Content-Language": _CONTENT_LANGUAGE,
                        },
                        "content": _report_media("html"),
                    },
                    "403": {
                        "description": "The link has expired or is not valid (tampered, "
                        "unknown secret, or no secret set): a page saying so, in the link's "
                        "locale when it can be read, else English.",
                        "headers": page_headers,
                        "content": {
                            MEDIA_TYPES["html"]: {
                                "schema": _TEXT,
                                "example": '<!DOCTYPE html>\n<html lang="da"><head><meta '
                                'charset="utf-8"><title>Linket er udløbet</title></head>'
                                "<body><h1>Linket er udløbet</h1>…</body></html>\n",
                            }
                        },
                    },
                    "503": down,
                },
            }
        },
    }


_RECOMPUTE = _object(
    {
        "status": {"type": "string", "enum": ["idle", "running", "done", "failed"]},
        "stage": {"type": ["string", "null"], "enum": ["rings", "conversions", "swap", None]},
        "done": {"type": "integer", "minimum": 0},
        "total": {"type": "integer", "minimum": 0},
        "staging": {
            "type": "boolean",
            "description": "A recompute is building its tables now, in this process or "
            "another replica.",
        },
        "result": {
            "oneOf": [
                {"type": "null"},
                _object(
                    {
                        "employees": {"type": "integer"},
                        "applicants": {"type": "integer"},
                        "events": {"type": "integer"},
                        "credits_assigned": {"type": "integer"},
                        "recognitions": {"type": "integer"},
                        "seconds": {"type": "number"},
                    },
                    "What the last recompute did.",
                ),
            ]
        },
    },
    "The recompute of this process: its stage and progress while it runs, its result after.",
)
_RECOMPUTE_EXAMPLE = {"status": "running", "stage": "conversions", "done": 5000,
                      "total": 12000, "result": None}  # fmt: skip
_STARTED_EXAMPLE = _RECOMPUTE_EXAMPLE | {"stage": None, "done": 0, "total": 0, "staging": False}


def _recompute_path() -> dict[str, Any]:
    common = {"tags": ["admin"], "security": BEARER}
    return {
        "/v1/admin/recompute": {
            "post": {
                **common,
                "operationId": "startRecompute",
                "summary": "Re-derive every derived table from the stored facts with this "
                "process's settings (after a change of ring window, half-lives or lookback)",
                "description": "Builds the tables beside the live ones and swaps them in one "
                "transaction; the results keep answering from the old rows until then. "
                "Batches wait while it runs.",
                "responses": {
                    "202": {
                        "description": "Started; follow it with GET.",
                        "content": json_body(_RECOMPUTE, _STARTED_EXAMPLE),
                    },
                    "401": unauthorized(),
                    "409": problem(
                        409,
                        "A recompute is running already, here or in another replica.",
                        "recompute-running",
                        "A recompute is running",
                        "a recompute is running; GET /v1/admin/recompute shows its progress",
                    ),
                    "503": _DOWN,
                },
            },
            "get": {
                **common,
                "operationId": "getRecompute",
                "summary": "The progress of the running recompute, or the last one's result",
                "responses": {
                    "200": {
                        "description": "The recompute's state.",
                        "content": json_body(
                            _RECOMPUTE, _RECOMPUTE_EXAMPLE | {"staging": True}
                        ),
                    },
                    "401": unauthorized(),
                    "503": _DOWN,
                },
            },
        }
    }  # fmt: skip


@functools.cache
def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples attribution results API",
            "version": "1.0.0",
            "license": LICENSE,
            "description": (
                "Reach, applicant and hire credit and spillover rings (CONTRACT §2-§5, §7). "
                "Every answer is computed from the stored facts, so the same events give "
                "byte-identical answers whatever order they arrived in."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "paths": {
            "/v1/summary": _get(
                "getSummary",
                "Period summary",
                _ref("Summary"),
                _EXAMPLES["Summary"],
                params=True,
            ),
            "/v1/sharers": _get(
                "listSharers",
                "Every employee with a post or credit in the period, ordered by applicant "
                "credit, then impressions (descending), then employee_id",
                {"type": "array", "items": _ref("Sharer")},
                _EXAMPLES["Sharers"],
                params=True,
            ),
            "/v1/sharers/{employee_id}": _get(
                "getSharer",
                "One sharer",
                _ref("Sharer"),
                _EXAMPLES["Sharer"],
                params=True,
                path="employee_id",
            ),
            "/v1/conversions/{applicant_id}": _get(
                "getConversion",
                "One applicant's touches and credit under every model",
                _ref("Conversion"),
                _EXAMPLES["Conversion"],
                params=False,
                path="applicant_id",
            ),
            "/v1/ripples": _get(
                "getRipples",
                "The ripple graph: rings and inspirer edges",
                _ref("Ripples"),
                _EXAMPLES["Ripples"],
                params=False,
            ),
            "/v1/employees/{employee_id}/ripples": _my_ripples_path(),
            **_report_paths(),
            **_recompute_path(),
            **operational_paths(
                "attribution",
                "The database answers and partitions are assigned",
                ["database", "partitions_assigned"],
            ),
        },
        "components": components(SCHEMAS),
    }


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
