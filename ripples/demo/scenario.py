"""A seeded, realistic advocacy pilot: who works here, who posts what and when, who engages
with whom, which links are clicked, who applies and who is hired.

The generator builds the pilot the way such a pilot unfolds — the ambassadors post, some
colleagues react and start sharing too, some of their colleagues follow — and hands out both
the plan (for the player, which sends it through the public surfaces) and the facts (for
:mod:`ripples.demo.truth`, which says what the results must be).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ripples.demo import truth

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

FIRST_NAMES = (
    "Mette", "Lars", "Sofie", "Anders", "Camilla", "Jonas", "Ida", "Rasmus", "Freja", "Mikkel",
    "Emma", "Kasper", "Laura", "Nikolaj", "Julie", "Mads", "Signe", "Frederik", "Anna", "Emil",
    "Priya", "Tom", "Sarah", "Ahmed", "Olivia", "Lukas", "Maja", "Tobias", "Clara", "Oscar",
)  # fmt: skip
LAST_NAMES = (
    "Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
    "Rasmussen", "Jørgensen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Poulsen", "Berg",
)  # fmt: skip
DEPARTMENTS = ("Water supply", "Wastewater", "District heating", "IT", "Customer service",
               "Engineering", "HR", "Finance")  # fmt: skip
JOBS = ("job-engineer", "job-electrician", "job-data", "job-planner", "job-technician")
VENDORS = ("greenhouse", "teamtailor", "lever")
# The ATS's jobs (CONTRACT §10 job.upserted): the families the utility finds hard to recruit
# for are flagged. job-planner is never upserted (its applicants have no family), and
# job-data is first filed under "data", then moved to "IT" a week later (the latest wins).
JOB_RECORDS = (
    ("job-engineer", "District heating engineer", "engineering", True, 0),
    ("job-electrician", "Electrician", "skilled trades", True, 0),
    ("job-technician", "Wastewater technician", "skilled trades", False, 0),
    ("job-data", "Data engineer", "data", False, 0),
    ("job-data", "Data engineer", "IT", False, 7),
)
PREPARED_REACH = 0.45
"""A prepared post (suggested or template text) reaches this share of what the same author's
own words would: the pilot's observation, built into the generator so the demo shows it."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    ambassador: bool
    department: str
    locale: str
    channel: str  # webhook | none
    opt_out: bool = False
    member_urn: str = ""
    followers: int | None = None  # the LinkedIn network size, when the HR system knows it


@dataclass(frozen=True)
class JobPlan:
    job_id: str
    title: str
    family: str
    hard_to_recruit: bool
    at: datetime  # the CloudEvent time of this record


@dataclass(frozen=True)
class Snapshot:
    post_id: str
    observed_at: datetime
    impressions: int
    members_reached: int
    reactions: int
    comments: int
    reshares: int
    clicks: int


@dataclass(frozen=True)
class LinkPlan:
    key: str  # the scenario's name for it; the real code comes from POST /v1/links
    employee: str | None
    job: str


@dataclass(frozen=True)
class ClickPlan:
    link: str  # LinkPlan.key
    visitor: str


@dataclass(frozen=True)
class ApplicationPlan:
    candidate: str  # the ATS's candidate id (ingest pseudonymises it)
    vendor: str
    job: str
    applied_at: datetime | None  # None: applies live, right after the visitor's clicks
    visitor: str | None = None
    ref: str | None = None  # LinkPlan.key passed as ripples_ref through the ATS source URL
    referrer: str | None = None  # employee id credited as referrer
    hired_after: timedelta | None = None  # hired this long after applying

    def hired_at(self, applied_at: datetime) -> datetime | None:
        return None if self.hired_after is None else applied_at + self.hired_after


@dataclass
class Scenario:
    seed: int
    start: datetime
    end: datetime
    people: list[Person] = field(default_factory=list)
    posts: list[truth.Post] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    engagements: list[tuple[truth.Engagement, str]] = field(default_factory=list)  # +action
    links: list[LinkPlan] = field(default_factory=list)
    clicks: list[ClickPlan] = field(default_factory=list)
    # Clicks logged before Ripples' redirector, imported as link.clicked events with their
    # own times: (link key, visitor id, at).
    imported_clicks: list[tuple[str, str, datetime]] = field(default_factory=list)
    applications: list[ApplicationPlan] = field(default_factory=list)
    jobs: list[JobPlan] = field(default_factory=list)

    def facts(
        self, click_times: dict[int, datetime], live_applied_at: dict[str, datetime]
    ) -> truth.Facts:
        """The facts once played: clicks happen live (their times come from the player),
        as do the applications that follow them."""
        facts = truth.Facts()
        for p in self.people:
            facts.employees[p.id] = truth.Employee(
                p.id,
                p.name,
                p.ambassador,
                notify=p.channel != "none" and not p.opt_out,
                followers=p.followers,
            )
        latest: dict[str, Snapshot] = {}
        for snap in self.snapshots:
            if snap.post_id not in latest or snap.observed_at > latest[snap.post_id].observed_at:
                latest[snap.post_id] = snap
        for post in self.posts:
            last = latest.get(post.id)
            facts.posts[post.id] = truth.Post(
                post.id,
                post.author,
                post.published_at,
                post.reshare_of,
                impressions=last.impressions if last else 0,
                clicks=last.clicks if last else 0,
                reactions=last.reactions if last else 0,
                comments=last.comments if last else 0,
                reshares=last.reshares if last else 0,
                origin=post.origin,
            )
        facts.engagements = [e for e, _ in self.engagements]
        for link in self.links:
            facts.links[link.key] = truth.Link(link.key, link.employee)
        facts.clicks = [
            truth.Click(c.link, c.visitor, click_times[i])
            for i, c in enumerate(self.clicks)
            if i in click_times
        ] + [truth.Click(link, visitor, at) for link, visitor, at in self.imported_clicks]
        facts.jobs = [
            truth.JobRecord(j.job_id, j.title, j.family, j.hard_to_recruit, j.at) for j in self.jobs
        ]
        for a in self.applications:
            applied = a.applied_at or live_applied_at[a.candidate]
            facts.applications[a.candidate] = truth.Application(
                a.candidate, a.job, applied, a.visitor, a.ref, a.referrer
            )
            hired_at = a.hired_at(applied)
            if hired_at is not None:
                facts.hires[a.candidate] = truth.Hire(a.candidate, a.job, hired_at)
        return facts


LIVE = 2
"""Link applications played live (redirector clicks, then the ATS webhook) while the demo runs."""


@dataclass(frozen=True)
class Size:
    employees: int = 150
    ambassadors: int = 8
    weeks: int = 12
    ring2: int = 14
    ring3: int = 6
    ring4: int = 2
    independents: int = 5
    exposed_only: int = 30
    applications: int = 90
    link_applications: int = 18
    referrals: int = 10
    hires: int = 12


SMALL = Size(
    employees=45,
    ambassadors=4,
    weeks=6,
    ring2=5,
    ring3=3,
    ring4=1,
    independents=2,
    exposed_only=8,
    applications=24,
    link_applications=6,
    referrals=4,
    hires=5,
)


def generate(
    seed: int = 7,
    size: Size = Size(),
    now: datetime | None = None,
    sink_url: str = "http://127.0.0.1:8099/recognitions",
) -> Scenario:
    rng = random.Random(seed)
    # The §10 fields (follower counts, post origins) come from a stream of their own, so the
    # rest of the pilot is the one the seed always gave.
    evidence = random.Random(f"{seed}:evidence")
    # The pilot covers whole days up to midnight today; the shape of what happens depends on
    # the seed alone (not on the time of day the demo runs), only the dates move with today.
    end = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - size.weeks * 7 * DAY
    scenario = Scenario(seed, start, end)

    # People: the HR system's view. Ambassadors and a share of the rest get recognitions by
    # webhook (the demo's sink); some have no channel, one ambassador opted out.
    for i in range(size.employees):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        ambassador = i < size.ambassadors
        channel = "webhook" if ambassador or rng.random() < 0.6 else "none"
        scenario.people.append(
            Person(
                id=f"emp-{i:03d}",
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{i}@example.com".replace("ø", "o"),
                ambassador=ambassador,
                department=rng.choice(DEPARTMENTS),
                locale="da" if rng.random() < 0.7 else "en",
                channel=channel,
                opt_out=ambassador and i == size.ambassadors - 1,
                member_urn=f"urn:li:person:m{i:03d}",
                # network size known for most; unrelated to how far their posts travel
                followers=None
                if evidence.random() < 0.1
                else int(evidence.lognormvariate(6.0, 0.9)),
            )
        )
    staff = [p.id for p in scenario.people]
    ambassadors = staff[: size.ambassadors]
    rest = staff[size.ambassadors :]
    rng.shuffle(rest)
    cursor = 0

    def take(n: int) -> list[str]:
        nonlocal cursor
        chosen = rest[cursor : cursor + n]
        cursor += n
        return chosen

    scenario.jobs = [
        JobPlan(job, title, family, hard, start + days * DAY)
        for job, title, family, hard, days in JOB_RECORDS
    ]
    post_count = 0
    ambassador_set = set(staff[: size.ambassadors])

    def publish(
        author: str | None,
        at: datetime,
        reshare_of: str | None = None,
        reach: tuple[int, int] = (1000, 3000),
    ) -> truth.Post:
        nonlocal post_count
        post_count += 1
        # Employees mostly write their own words; now and then they post the communication
        # team's suggested text or a template (ambassadors less often).
        origin = "own"
        if author is not None and reshare_of is None:
            own_share = 0.75 if author in ambassador_set else 0.6
            if evidence.random() >= own_share:
                origin = evidence.choice(("suggested", "template"))
        post = truth.Post(
            f"urn:li:share:{7_000_000 + post_count}", author, at, reshare_of, origin=origin
        )
        scenario.posts.append(post)
        _snapshots(scenario, rng, post, reach, 1.0 if origin == "own" else PREPARED_REACH)
        return post

    # The company page posts twice a week; the ambassadors post their own stories.
    for week in range(size.weeks):
        for day in (1, 3):
            publish(None, start + (7 * week + day) * DAY + 2 * HOUR, reach=(600, 2200))
    for author in ambassadors:
        at = start + rng.uniform(0.5, 6) * DAY
        while at < end - DAY:
            publish(author, at, reach=(2500, 11000))
            at += rng.uniform(5, 12) * DAY

    # Ripples: colleagues exposed to a post of the ring before start sharing within 14 days.
    by_author: dict[str | None, list[truth.Post]] = {}
    for post in scenario.posts:
        by_author.setdefault(post.author, []).append(post)

    def follow(inspirers: list[str], adopters: list[str], reach: tuple[int, int]) -> None:
        mixed = False  # one adopter also saw a peer of its own ring: 1 + the smallest ring
        for adopter in adopters:
            candidates = [
                p
                for u in inspirers
                for p in by_author.get(u, [])
                if p.published_at < end - 10 * DAY
            ]
            origin = rng.choice(candidates)
            x = origin.published_at + rng.uniform(2, 60) * HOUR
            if rng.random() < 0.4:  # the first share is a reshare of the inspiring post
                first = publish(adopter, x + rng.uniform(0, 2) * HOUR, origin.id, reach)
            else:
                action = rng.choice(("reaction", "comment", "reaction"))
                scenario.engagements.append((truth.Engagement(origin.id, adopter, x), action))
                first = publish(adopter, x + rng.uniform(1, 9) * DAY, reach=reach)
            # Some saw more than one colleague's post before they started: two inspirers.
            others = [
                p
                for p in candidates
                if p.author != origin.author and p.published_at < first.published_at - HOUR
            ]
            if others and rng.random() < 0.5:
                second = rng.choice(others)
                seen = max(
                    second.published_at + rng.uniform(1, 24) * HOUR,
                    first.published_at - rng.uniform(1, 12) * DAY,
                )
                if seen < first.published_at:
                    scenario.engagements.append(
                        (truth.Engagement(second.id, adopter, seen), "comment")
                    )
            peers = [
                p
                for peer in adopters
                if peer != adopter
                for p in by_author.get(peer, [])
                if p.published_at < first.published_at - 2 * HOUR
            ]
            if peers and not mixed:
                mixed = True
                peer_post = min(peers, key=lambda p: p.published_at)
                seen = max(peer_post.published_at + HOUR, first.published_at - 10 * DAY)
                scenario.engagements.append(
                    (truth.Engagement(peer_post.id, adopter, seen), "reaction")
                )
            by_author.setdefault(adopter, []).append(first)
            at = first.published_at + rng.uniform(4, 14) * DAY
            while at < end - DAY and rng.random() < 0.7:
                by_author[adopter].append(publish(adopter, at, reach=reach))
                at += rng.uniform(6, 15) * DAY

    ring2 = take(size.ring2)
    follow(ambassadors, ring2, (1200, 6000))
    ring3 = take(size.ring3)
    follow(ring2, ring3, (800, 4000))
    ring4 = take(size.ring4)
    follow(ring3, ring4, (600, 3000))

    # Colleagues who start on their own, and colleagues who engage but never post.
    # Three of them test the edges of §2: one liked an ambassador's post weeks before
    # sharing (outside the window), one's like carries a clock-skewed time before the post was
    # published (no exposure), and one colleague started after a post of an independent
    # sharer (independents inspire no one).
    leads: list[truth.Post] = []
    for i, independent in enumerate(take(size.independents)):
        offset = {0: size.weeks * 7 - 3.0, 1: size.weeks * 7 - 5.0}.get(
            i, rng.uniform(3, size.weeks * 7 - 2)
        )
        post = publish(independent, start + offset * DAY, reach=(400, 2500))
        leads.append(post)
        if i == 0:
            seen = post.published_at - rng.uniform(16, 25) * DAY
            liked = [p for a in ambassadors for p in by_author[a] if p.published_at < seen]
        else:
            seen = post.published_at - rng.uniform(2, 6) * DAY
            liked = [
                p
                for a in ambassadors
                for p in by_author[a]
                if seen < p.published_at < post.published_at
            ]
        if i < 2 and liked:
            target = rng.choice(liked)
            scenario.engagements.append(
                (
                    truth.Engagement(
                        target.id, independent, seen if i == 0 else target.published_at - HOUR
                    ),
                    "reaction",
                )
            )
    lead = leads[0]
    follower = take(1)[0]
    scenario.engagements.append(
        (truth.Engagement(lead.id, follower, lead.published_at + 5 * HOUR), "comment")
    )
    publish(follower, lead.published_at + 2 * DAY, reach=(400, 2500))
    employee_posts = [p for p in scenario.posts if p.author in set(ambassadors + ring2)]
    for reader in take(size.exposed_only):
        for _ in range(rng.randint(1, 3)):
            post = rng.choice(employee_posts)
            at = post.published_at + rng.uniform(1, 48) * HOUR
            if at < end:
                scenario.engagements.append(
                    (truth.Engagement(post.id, reader, at), rng.choice(("reaction", "comment")))
                )
    # Ambassadors cheer each other on (no effect on their ring).
    for post in [p for p in scenario.posts if p.author in ambassadors]:
        fan = rng.choice([a for a in ambassadors if a != post.author])
        scenario.engagements.append(
            (
                truth.Engagement(post.id, fan, post.published_at + rng.uniform(1, 8) * HOUR),
                "reaction",
            )
        )

    # Tracked links: each ambassador and some ring-2 sharers link to a job; one company link.
    sharers = ambassadors + ring2[: max(1, len(ring2) // 2)]
    for i, employee in enumerate(sharers):
        scenario.links.append(LinkPlan(f"link-{i}", employee, JOBS[i % len(JOBS)]))
    scenario.links.append(LinkPlan("link-company", None, JOBS[0]))

    # Applications: some arrive through link clicks (live), some are referrals, most neither.
    candidate = 0

    def next_candidate() -> str:
        nonlocal candidate
        candidate += 1
        return f"cand-{seed}-{candidate:04d}"

    # Only the first LIVE visitors click through the redirector and apply while the demo runs;
    # the others applied during the pilot, their clicks logged then (imported with their
    # times). Played all live, every link application fell on the run's day, after the pilot's
    # last post: the report's last week showed ~25 applicants against one post. Their times
    # come from a stream of their own, so the rest of the pilot is the one the seed gave.
    timing = random.Random(f"{seed}:timing")
    span = size.weeks * 7 * DAY

    def during_pilot() -> datetime:
        return start + timing.uniform(0.05, 0.97) * span

    for i in range(size.link_applications):
        visitor = f"visitor-{i}"
        # The first visitor always takes a long route (three links), so every pilot has an
        # application whose credit the five models split differently.
        route = rng.sample(scenario.links, k=3 if i == 0 else rng.choice((1, 1, 2, 3)))
        applied_at: datetime | None = None
        if i < LIVE:
            for link in route:
                scenario.clicks.append(ClickPlan(link.key, visitor))
        else:
            applied_at = during_pilot()
            visitor = f"shortener-{visitor}-{seed}"
            at = applied_at
            for link in reversed(route):
                at -= timing.uniform(1, 72) * HOUR
                scenario.imported_clicks.append((link.key, visitor, at))
        ref = route[-1].key if rng.random() < 0.5 else None
        # Now and then a colleague also put the applicant forward: a referral on top.
        referrer = rng.choice(ambassadors + ring2) if i == 0 or rng.random() < 0.3 else None
        scenario.applications.append(
            ApplicationPlan(
                next_candidate(),
                rng.choice(VENDORS),
                route[-1].job,
                applied_at,
                visitor,
                ref,
                referrer,
            )
        )
    for i in range(max(1, size.link_applications // 3)):
        # Clicked on the phone, applied on the laptop: the link code travels with the
        # application (ripples_ref), the clicks do not (another browser, another cookie).
        link = scenario.links[-1] if i == 0 else rng.choice(scenario.links)  # [-1]: company
        scenario.applications.append(
            ApplicationPlan(
                next_candidate(),
                rng.choice(VENDORS),
                link.job,
                None if i == 0 else during_pilot(),
                None,
                link.key,
            )
        )
        scenario.clicks.append(ClickPlan(link.key, f"phone-{i}"))
    for i in range(size.link_applications // 2):  # clicks that lead nowhere
        scenario.clicks.append(ClickPlan(rng.choice(scenario.links).key, f"browser-{i}"))
    # Older applications whose clicks fall on both sides of the 30-day lookback (clicks
    # imported from the link shortener used before), and one whose visitor clicked only
    # after applying (a click after the application is no touch).
    for i in range(2):
        applied = start + rng.uniform(0.6, 0.95) * size.weeks * 7 * DAY
        visitor = f"shortener-visitor-{seed}-{i:04d}"
        stale, older, recent = rng.sample(scenario.links, k=3)
        scenario.imported_clicks.append((stale.key, visitor, applied - rng.uniform(35, 60) * DAY))
        scenario.imported_clicks.append((older.key, visitor, applied - rng.uniform(15, 25) * DAY))
        scenario.imported_clicks.append((recent.key, visitor, applied - rng.uniform(1, 5) * DAY))
        scenario.applications.append(
            ApplicationPlan(
                next_candidate(),
                "greenhouse",
                recent.job,
                applied,
                visitor,
                referrer=rng.choice(ambassadors) if i == 0 else None,
            )
        )
    scenario.applications.append(
        ApplicationPlan(
            next_candidate(),
            "teamtailor",
            JOBS[1],
            start + rng.uniform(0.5, 0.9) * size.weeks * 7 * DAY,
            "visitor-0",
        )
    )
    for _ in range(size.referrals):
        scenario.applications.append(
            ApplicationPlan(
                next_candidate(),
                rng.choice(VENDORS),
                rng.choice(JOBS),
                start + rng.uniform(2, size.weeks * 7 - 1) * DAY,
                referrer=rng.choice(ambassadors + ring2 + ring3),
            )
        )
    while len(scenario.applications) < size.applications:
        scenario.applications.append(
            ApplicationPlan(
                next_candidate(),
                rng.choice(VENDORS),
                rng.choice(JOBS),
                start + rng.uniform(0.5, size.weeks * 7 - 0.5) * DAY,
            )
        )
    # Hires: weeks after applying; the live applicants of the final days are hired on the
    # spot (the demo compresses the last week into its run).
    for i in rng.sample(range(len(scenario.applications)), k=size.hires):
        plan = scenario.applications[i]
        if plan.applied_at is None:
            after = timedelta(seconds=1)
        else:
            after = min(rng.uniform(7, 30) * DAY, max(end - HOUR - plan.applied_at, HOUR))
        scenario.applications[i] = dataclasses.replace(plan, hired_after=after)
    return scenario


def _snapshots(
    scenario: Scenario,
    rng: random.Random,
    post: truth.Post,
    reach: tuple[int, int],
    scale: float = 1.0,
) -> None:
    """Polled cumulative statistics that grow after publication (LinkedIn's curve: most
    impressions in the first days); ``scale`` < 1 for prepared text."""
    final = int(rng.randint(*reach) * scale)
    rates = [(rng.uniform(0.01, 0.03), rng.uniform(0.005, 0.02)) for _ in range(3)]
    for (day, share), (reacted, clicked) in zip(
        ((1, 0.55), (3, 0.85), (7, 1.0)), rates, strict=True
    ):
        observed = min(post.published_at + day * DAY, scenario.end)
        impressions = int(final * share)
        scenario.snapshots.append(
            Snapshot(
                post.id,
                observed,
                impressions,
                int(impressions * 0.7),
                int(impressions * reacted),
                int(impressions * 0.004),
                int(impressions * 0.002),
                int(impressions * clicked),
            )
        )
        if observed == scenario.end:
            break
