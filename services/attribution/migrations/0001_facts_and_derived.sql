-- Attribution state. Facts are stored as events say them (idempotent upserts with a
-- deterministic winner); everything else is derived from the facts in the same transaction
-- as the batch that changed them, so replays and any arrival order give the same tables.
create schema if not exists attribution;

-- every (source, id) ever stored: a second event with the same pair is a duplicate
create table attribution.events (
    source text not null,
    id text not null,
    type text not null,
    primary key (source, id)
);

-- ---- facts -------------------------------------------------------------------------------

-- latest HR record by CloudEvent time (ties: source, id); personal fields are null once a
-- removal at or after that record's time is known
create table attribution.employees (
    employee_id text primary key,
    upsert_time timestamptz,
    upsert_source text,
    upsert_id text,
    ambassador boolean not null default false,
    department text,
    locale text not null default 'en',
    recognition_opt_out boolean not null default false,
    display_name text,
    notify jsonb,
    linkedin_member_urn text,
    removed_time timestamptz
);

create table attribution.posts (
    post_id text primary key,
    ev_time timestamptz not null,
    ev_source text not null,
    ev_id text not null,
    author_kind text not null,
    employee_id text,
    published_at timestamptz not null,
    url text,
    reshare_of text,
    link_codes text[] not null default '{}'
);
create index posts_by_author on attribution.posts (employee_id, published_at);
create index posts_by_time on attribution.posts (published_at);
create index posts_by_reshare on attribution.posts (reshare_of);

-- per post and metric: the value with the latest observed_at (equal: the larger value)
create table attribution.post_metrics (
    post_id text primary key,
    impressions bigint, impressions_at timestamptz,
    members_reached bigint, members_reached_at timestamptz,
    reactions bigint, reactions_at timestamptz,
    comments bigint, comments_at timestamptz,
    reshares bigint, reshares_at timestamptz,
    clicks bigint, clicks_at timestamptz
);

create table attribution.engagements (
    source text not null,
    id text not null,
    post_id text not null,
    action text not null,
    at timestamptz not null,
    actor_employee_id text,
    primary key (source, id)
);
create index engagements_by_actor on attribution.engagements (actor_employee_id, at);
create index engagements_by_post on attribution.engagements (post_id);

create table attribution.links (
    link_code text primary key,
    ev_time timestamptz not null,
    ev_source text not null,
    ev_id text not null,
    target_url text not null,
    employee_id text,
    job_id text,
    post_id text
);

create table attribution.clicks (
    source text not null,
    id text not null,
    link_code text not null,
    visitor_id text not null,
    at timestamptz not null,
    primary key (source, id)
);
create index clicks_by_visitor on attribution.clicks (visitor_id);
create index clicks_by_link on attribution.clicks (link_code);

create table attribution.applications (
    applicant_id text primary key,
    ev_time timestamptz not null,
    ev_source text not null,
    ev_id text not null,
    job_id text not null,
    applied_at timestamptz not null,
    visitor_id text,
    link_code text,
    referrer_employee_id text,
    source_name text
);
create index applications_by_visitor on attribution.applications (visitor_id);
create index applications_by_link on attribution.applications (link_code);
create index applications_by_referrer on attribution.applications (referrer_employee_id);
create index applications_by_time on attribution.applications (applied_at);

create table attribution.hires (
    applicant_id text primary key,
    ev_time timestamptz not null,
    ev_source text not null,
    ev_id text not null,
    job_id text not null,
    hired_at timestamptz not null
);
create index hires_by_time on attribution.hires (hired_at);

-- sha256 of erased applicant ids: later events about them are ignored
create table attribution.erased_applicants (
    applicant_hash text primary key
);

-- ---- derived -----------------------------------------------------------------------------

-- every employee with a ring or a first share (absent: independent, never shared)
create table attribution.placements (
    employee_id text primary key,
    ring integer,
    first_shared_at timestamptz
);

create table attribution.inspirers (
    employee_id text not null,
    inspirer_id text not null,
    weight double precision not null,
    exposure text not null,
    exposed_at timestamptz not null,
    primary key (employee_id, inspirer_id)
);
create index inspirers_by_inspirer on attribution.inspirers (inspirer_id);

create table attribution.touches (
    applicant_id text not null,
    position integer not null,
    at timestamptz not null,
    kind text not null,
    employee_id text,
    link_code text,
    primary key (applicant_id, position)
);

-- credit per conversion, model and party (employee_id null: the company page)
create table attribution.credits (
    applicant_id text not null,
    model text not null,
    employee_id text,
    weight double precision not null
);
create index credits_by_applicant on attribution.credits (applicant_id);
create index credits_by_employee on attribution.credits (employee_id);

-- per conversion: digest of the derived rows (touches, credit) and of the last
-- credit.assigned emitted for the application and for the hire
create table attribution.conversions (
    applicant_id text primary key,
    derived_digest text not null,
    applied_digest text,
    hired_digest text
);

-- erased applicants' conversions, kept as anonymous numbers
create table attribution.erased_conversions (
    conversion_id bigserial primary key,
    job_id text,
    applied_at timestamptz,
    hired_at timestamptz,
    attributed boolean not null
);
create table attribution.erased_credits (
    conversion_id bigint not null references attribution.erased_conversions,
    model text not null,
    employee_id text,
    weight double precision not null
);

-- recognitions ever due: each id is emitted once
create table attribution.recognitions (
    recognition_id text primary key,
    kind text not null,
    employee_id text not null,
    due_at timestamptz not null
);

-- output events written in the batch transaction, sent after it commits
create table attribution.outbox (
    seq bigserial primary key,
    topic text not null,
    event bytea not null
);
