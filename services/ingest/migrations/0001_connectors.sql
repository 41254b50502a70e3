-- Tracked links: PostgreSQL is the source of truth, the redirector caches them in memory.
create table ingest_links (
    link_code text primary key,
    target_url text not null,
    employee_id text,
    job_id text,
    post_id text,
    created_at timestamptz not null default now()
);

-- Vendor deliveries already published (webhook dedup on the vendor's event/delivery id).
create table ingest_deliveries (
    vendor text not null,
    delivery_id text not null,
    received_at timestamptz not null default now(),
    primary key (vendor, delivery_id)
);

-- What ingest needs to map vendor identities to employees, learnt from the employee events
-- it accepts: the LinkedIn member URN and a keyed hash of the work e-mail (never the address).
create table ingest_employees (
    employee_id text primary key,
    email_hash text,
    linkedin_member_urn text,
    updated_at timestamptz not null
);
create index ingest_employees_email_hash on ingest_employees (email_hash);
create index ingest_employees_member_urn on ingest_employees (linkedin_member_urn);

-- LinkedIn poller state: posts already announced, members whose token stopped working,
-- and the request budget of each UTC day.
create table ingest_linkedin_posts (
    post_id text primary key,
    discovered_at timestamptz not null default now()
);
create table ingest_linkedin_members (
    member_urn text primary key,
    status text not null,
    checked_at timestamptz not null default now()
);
create table ingest_linkedin_budget (
    day date primary key,
    requests integer not null
);
