-- The employee's page and the communication team's overview (CONTRACT §11;
-- services/ingest/page/). Learnt from the events ingest accepts, like ingest_employees; an
-- employee.removed deletes the employee's rows here (erasure).

-- Who is in the programme: the HR record's name and ambassador flag (for the overview,
-- which only key holders and share-link readers see; never on another employee's page), and
-- its opt-out (the page shows the employee's effective choice before they change it).
create table ingest_people (
    employee_id text primary key,
    display_name text not null,
    ambassador boolean not null,
    recognition_opt_out boolean not null,
    updated_at timestamptz not null
);

-- What the employee set on their page (or any preference event accepted): per field, the
-- latest CloudEvent `time` wins, as in the notifier (notifier_preferences).
create table ingest_preferences (
    employee_id text primary key,
    locale text,
    locale_at timestamptz,
    channel text,
    address text,
    notify_at timestamptz,
    opt_out boolean,
    opt_out_at timestamptz
);

-- The jobs an employee can make a tracked link for (from ripples.job.upserted.v1).
create table ingest_jobs (
    job_id text primary key,
    title text,
    updated_at timestamptz not null
);

-- Page links handed out (POST /v1/employees/{id}/page-links) and opened (GET /me/{token}),
-- by the SHA-256 of the token (a token is a bearer credential: never stored as such).
create table ingest_page_links (
    token_digest text primary key,
    employee_id text not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    opened_at timestamptz
);
create index ingest_page_links_employee on ingest_page_links (employee_id);

-- A database migrated before this file already ran 0090_roles: grant the new tables too.
do $$
begin
    if exists (select from pg_roles where rolname = 'ripples_ingest') then
        grant select, insert, update, delete on ingest_people, ingest_preferences, ingest_jobs,
            ingest_page_links to ripples_ingest;
    end if;
end
$$;
