-- The notifier's own data: the employees it may write to, and the delivery ledger.

-- From ripples.employees; the record with the latest CloudEvent time wins. A removal keeps
-- the row (so an older upsert arriving late cannot bring the person back) without any
-- personal field.
create table notifier_employees (
    employee_id text primary key,
    display_name text,
    locale text not null default 'en',
    channel text,
    address text,
    opt_out boolean not null default false,
    removed boolean not null default false,
    event_time timestamptz not null
);

-- One row per recognition id: at most one successful delivery, ever.
create table notifier_deliveries (
    recognition_id text primary key,
    kind text not null,
    employee_id text not null,
    due_at timestamptz not null,
    facts jsonb not null,
    -- the recognition event itself, to dead-letter it with its origin when delivery fails
    event_id text not null,
    event_source text not null,
    event_time timestamptz not null,
    source_partition integer not null,
    source_offset bigint not null,
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'suppressed', 'failed')),
    channel text,
    attempts integer not null default 0,
    last_error text,
    received_at timestamptz not null,
    -- the day a message counts against the daily cap is the day of its first attempt
    first_attempt_at timestamptz,
    next_attempt_at timestamptz not null,
    -- a dispatcher's claim; expires, so a crashed replica's rows are picked up again
    claimed_until timestamptz,
    -- true from the start of an attempt until its result is recorded: still true at the
    -- next claim means the process died mid-attempt
    in_flight boolean not null default false,
    -- over the daily cap: goes out on digest_day, folded into the digest digest_id
    digest_day date,
    digest_id text,
    sent_at timestamptz
);

create index notifier_deliveries_employee on notifier_deliveries (employee_id, due_at);
create index notifier_deliveries_due on notifier_deliveries (next_attempt_at)
    where status = 'pending';
create index notifier_deliveries_digest on notifier_deliveries (digest_id)
    where digest_id is not null;
