"""Plays a scenario through Ripples' public surfaces, as the real systems would:

- the HR system upserts the employees (``POST /v1/events:batch``);
- LinkedIn's posts, polled statistics and engagements arrive as events, in the disorder real
  systems produce: engagements reported after the posts they led to, older snapshots after
  newer ones, whole batches delivered twice;
- people create tracked links (``POST /v1/links``) and visitors click them through the real
  redirector (``GET /r/{code}``), keeping the ``ripples_vid`` cookie it sets;
- applications and hires arrive as signed ATS webhooks (Greenhouse and Teamtailor), the
  career site passing ``ripples_ref`` and ``ripples_vid`` through the source URL; some
  deliveries are repeated, as vendors do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from ripples.demo.scenario import ApplicationPlan, Scenario

BATCH = 400
CAREERS = "https://careers.example.com/jobs"
SOURCE = "urn:ripples:demo"


@dataclass
class Played:
    """What only the play itself knows: when the live clicks and applications happened."""

    click_times: dict[int, datetime] = field(default_factory=dict)
    applied_at: dict[str, datetime] = field(default_factory=dict)
    link_codes: dict[str, str] = field(default_factory=dict)
    visitors: dict[str, str] = field(default_factory=dict)  # scenario visitor → ripples_vid
    requests: int = 0


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event(
    kind: str, event_id: str, at: datetime, data: dict[str, Any], source: str = SOURCE
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": f"ripples.{kind}.v1",
        "id": event_id,
        "source": source,
        "time": _stamp(at),
        "data": data,
    }


class Player:
    def __init__(
        self,
        ingest: str,
        api_key: str,
        secrets: dict[str, str],
        sink_url: str,
        progress: Callable[[int], None] = lambda _: None,
        seed: int = 7,
    ) -> None:
        self.ingest = ingest
        self.api_key = api_key
        self.secrets = secrets
        self.sink_url = sink_url
        self.progress = progress
        self.rng = random.Random(seed)
        self.played = Played()

    def steps(self, scenario: Scenario) -> int:
        """How many progress steps :meth:`play` reports."""
        batches = -(-len(self.events(scenario)) // BATCH)
        return (
            2 * batches
            + len(scenario.links)
            + len(scenario.clicks)
            + 2 * len(scenario.applications)
        )

    async def play(self, scenario: Scenario) -> Played:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(base_url=self.ingest, headers=headers, timeout=30) as api:
            self.api = api
            await self._events(scenario)
            await self._links(scenario)
            await self._clicks_and_applications(scenario)
        return self.played

    # --- events: HR, posts, statistics, engagements -----------------------------------------

    def events(self, scenario: Scenario) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in scenario.people:
            notify: dict[str, Any] = {"channel": p.channel}
            if p.channel == "webhook":
                notify["address"] = self.sink_url
            out.append(
                _event(
                    "employee.upserted",
                    f"hr-{p.id}",
                    scenario.start,
                    {
                        "employee_id": p.id,
                        "display_name": p.name,
                        "ambassador": p.ambassador,
                        "department": p.department,
                        "locale": p.locale,
                        "notify": notify,
                        "recognition_opt_out": p.opt_out,
                        "linkedin_member_urn": p.member_urn,
                        "work_email": p.email,
                    }
                    | ({} if p.followers is None else {"followers": p.followers}),
                    "urn:ripples:demo:hr",
                )
            )
        for post in scenario.posts:
            data: dict[str, Any] = {
                "post_id": post.id,
                "published_at": _stamp(post.published_at),
                "author_kind": "company" if post.author is None else "employee",
            }
            if post.author is not None:
                data["employee_id"] = post.author
            if post.reshare_of is not None:
                data["reshare_of"] = post.reshare_of
            # LinkedIn's own connector does not know the origin: most own-words posts come
            # without the field (the default), the communication team's tool marks the rest
            if post.author is not None and (post.origin != "own" or len(out) % 3 == 0):
                data["origin"] = post.origin
            out.append(
                _event(
                    "post.published",
                    f"li-post-{post.id}",
                    post.published_at,
                    data,
                    "urn:ripples:demo:linkedin",
                )
            )
        for snap in scenario.snapshots:
            out.append(
                _event(
                    "post.metrics",
                    f"li-stats-{snap.post_id}-{int(snap.observed_at.timestamp())}",
                    snap.observed_at,
                    {
                        "post_id": snap.post_id,
                        "observed_at": _stamp(snap.observed_at),
                        "impressions": snap.impressions,
                        "members_reached": snap.members_reached,
                        "reactions": snap.reactions,
                        "comments": snap.comments,
                        "reshares": snap.reshares,
                        "clicks": snap.clicks,
                    },
                    "urn:ripples:demo:linkedin",
                )
            )
        for job in scenario.jobs:
            out.append(
                _event(
                    "job.upserted",
                    f"ats-job-{job.job_id}-{int(job.at.timestamp())}",
                    job.at,
                    {
                        "job_id": job.job_id,
                        "title": job.title,
                        "family": job.family,
                        "hard_to_recruit": job.hard_to_recruit,
                    },
                    "urn:ripples:demo:ats",
                )
            )
        for i, (engagement, action) in enumerate(scenario.engagements):
            out.append(
                _event(
                    "post.engagement",
                    f"li-social-{i}",
                    engagement.at,
                    {
                        "post_id": engagement.post_id,
                        "action": action,
                        "at": _stamp(engagement.at),
                        "actor_employee_id": engagement.actor,
                    },
                    "urn:ripples:demo:linkedin",
                )
            )
        return out

    async def _events(self, scenario: Scenario) -> None:
        events = self.events(scenario)
        people = [e for e in events if e["type"] == "ripples.employee.upserted.v1"]
        rest = [e for e in events if e["type"] != "ripples.employee.upserted.v1"]
        # Real systems deliver out of order: shuffle, and hold a fifth back to the end.
        self.rng.shuffle(rest)
        late = rest[: len(rest) // 5]
        ordered = people + rest[len(rest) // 5 :] + late
        batches = [ordered[i : i + BATCH] for i in range(0, len(ordered), BATCH)]
        # ... and deliver some batches twice (same source and id: changes nothing).
        twice = self.rng.sample(batches, k=max(1, len(batches) // 3))
        for batch in batches + twice:
            await self._batch(batch)
        self.progress(len(batches) - len(twice))  # steps() counts every batch twice

    async def _batch(self, batch: Sequence[dict[str, Any]]) -> None:
        response = await self.api.post(
            "/v1/events:batch",
            content=orjson.dumps(list(batch)),
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        self._check(response, "POST /v1/events:batch")
        self.progress(1)

    # --- tracked links and clicks ------------------------------------------------------------

    async def _links(self, scenario: Scenario) -> None:
        for link in scenario.links:
            body: dict[str, Any] = {"target_url": f"{CAREERS}/{link.job}", "job_id": link.job}
            if link.employee is not None:
                body["employee_id"] = link.employee
            response = await self.api.post("/v1/links", json=body)
            self._check(response, "POST /v1/links")
            self.played.link_codes[link.key] = response.json()["link_code"]
            self.progress(1)

    async def _clicks_and_applications(self, scenario: Scenario) -> None:
        browsers: dict[str, httpx.AsyncClient] = {}
        try:
            for index, click in enumerate(scenario.clicks):
                browser = browsers.get(click.visitor)
                if browser is None:
                    browser = browsers[click.visitor] = httpx.AsyncClient(
                        base_url=self.ingest, follow_redirects=False, timeout=30
                    )
                code = self.played.link_codes[click.link]
                self.played.click_times[index] = datetime.now(UTC)
                response = await browser.get(f"/r/{code}")
                self._check(response, "GET /r/{code}", expected=302)
                self.played.visitors[click.visitor] = browser.cookies["ripples_vid"]
                self.progress(1)
            await self._imported_clicks(scenario)
            for plan in scenario.applications:
                await self._apply(plan)
            for plan in scenario.applications:
                await self._hire(plan)
        finally:
            for browser in browsers.values():
                await browser.aclose()

    async def _imported_clicks(self, scenario: Scenario) -> None:
        """Clicks logged by the link shortener used before, imported with their own times."""
        events = [
            _event(
                "link.clicked",
                f"shortener-click-{i}",
                at,
                {
                    "link_code": self.played.link_codes[link],
                    "visitor_id": visitor,
                    "at": _stamp(at),
                },
                "urn:ripples:demo:shortener",
            )
            for i, (link, visitor, at) in enumerate(scenario.imported_clicks)
        ]
        if events:
            await self._batch(events)
        else:
            self.progress(1)

    # --- ATS webhooks --------------------------------------------------------------------------

    def _source_url(self, plan: ApplicationPlan) -> str:
        query = []
        if plan.ref is not None:
            query.append(f"ripples_ref={self.played.link_codes[plan.ref]}")
        if plan.visitor is not None:
            # a visitor of the redirector has its cookie's id; an imported one its own
            query.append(f"ripples_vid={self.played.visitors.get(plan.visitor, plan.visitor)}")
        return f"{CAREERS}/{plan.job}" + ("?" + "&".join(query) if query else "")

    async def _apply(self, plan: ApplicationPlan) -> None:
        applied_at = plan.applied_at or datetime.now(UTC)
        self.played.applied_at[plan.candidate] = applied_at
        if plan.vendor == "teamtailor" and plan.referrer is None:
            await self._teamtailor(plan, "job_application.create", applied_at)
        else:
            await self._greenhouse(plan, "new_candidate_application", applied_at)
        self.progress(1)

    async def _hire(self, plan: ApplicationPlan) -> None:
        hired_at = plan.hired_at(self.played.applied_at[plan.candidate])
        if hired_at is not None:
            if plan.vendor == "teamtailor" and plan.referrer is None:
                await self._teamtailor(plan, "job_application.update", hired_at)
            else:
                await self._greenhouse(plan, "hire_candidate", hired_at)
        self.progress(1)

    async def _greenhouse(self, plan: ApplicationPlan, action: str, at: datetime) -> None:
        application: dict[str, Any] = {
            "id": int(hashlib.sha256(plan.candidate.encode()).hexdigest()[:8], 16),
            "candidate": {
                "id": plan.candidate,
                "first_name": "(not sent on)",
                "email_addresses": [{"value": "candidate@example.net"}],
            },
            "jobs": [{"id": plan.job, "name": plan.job}],
            "source": {"id": 1, "public_name": "Careers site"},
            "custom_fields": {"ripples_source_url": {"value": self._source_url(plan)}},
        }
        if action == "new_candidate_application":
            application["applied_at"] = _stamp(at)
        else:
            # Greenhouse's hire_candidate: "offer.resolved_at: Date the offer was accepted".
            application["offer"] = {"id": 1, "status": "accepted", "resolved_at": _stamp(at)}
        if plan.referrer is not None:
            application["credited_to"] = {
                "id": 4080,
                "employee_id": plan.referrer,
                "name": "(referrer)",
            }
        body = orjson.dumps({"action": action, "payload": {"application": application}})
        signature = hmac.new(
            self.secrets["INGEST_GREENHOUSE_SECRET_KEY"].encode(), body, hashlib.sha256
        ).hexdigest()
        await self._webhook("greenhouse", body, {"Signature": f"sha256 {signature}"})

    async def _teamtailor(self, plan: ApplicationPlan, event: str, at: datetime) -> None:
        attributes: dict[str, Any] = {"created-at": _stamp(at)}
        relationships: dict[str, Any] = {
            "candidate": {"data": {"id": plan.candidate, "type": "candidates"}},
            "job": {"data": {"id": plan.job, "type": "jobs"}},
        }
        payload: dict[str, Any] = {
            "event_name": event,
            "data": {
                "id": plan.candidate,
                "type": "job-applications",
                "attributes": attributes,
                "relationships": relationships,
            },
        }
        if event == "job_application.create":
            attributes["referring-url"] = self._source_url(plan)
            attributes["referring-site"] = "Careers site"
        else:
            attributes["changed-stage-at"] = _stamp(at)
            relationships["stage"] = {"data": {"id": "hired-stage", "type": "stages"}}
            payload["included"] = [
                {"id": "hired-stage", "type": "stages", "attributes": {"stage-type": "hired"}}
            ]
        raw_payload = orjson.dumps(payload)
        digest = hmac.new(
            self.secrets["INGEST_TEAMTAILOR_SIGNATURE_KEY"].encode(), raw_payload, hashlib.sha256
        ).hexdigest()
        signature = base64.b64encode(digest.encode()).decode()
        body = b'{"signature":"' + signature.encode() + b'","payload":' + raw_payload + b"}"
        await self._webhook("teamtailor", body, {})

    async def _webhook(self, vendor: str, body: bytes, headers: dict[str, str]) -> None:
        # Vendors deliver at least once: now and then the same delivery comes twice.
        for _ in range(2 if self.rng.random() < 0.15 else 1):
            response = await self.api.post(
                f"/v1/webhooks/{vendor}",
                content=body,
                headers=headers | {"Content-Type": "application/json"},
            )
            self._check(response, f"POST /v1/webhooks/{vendor}")

    def _check(self, response: httpx.Response, what: str, expected: int | None = None) -> None:
        self.played.requests += 1
        ok = response.status_code == expected if expected else response.is_success
        if not ok:
            raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:500]}")
