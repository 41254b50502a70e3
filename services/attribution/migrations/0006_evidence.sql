-- CONTRACT §10 facts. A post's origin and an employee's followers belong to the record they
-- came with (the latest by CloudEvent time wins, as for the other fields of those tables);
-- jobs are stored like the other upserted facts: the greatest (time, source, id) wins.
alter table attribution.posts add column origin text not null default 'own';
alter table attribution.employees add column followers bigint;

create table attribution.jobs (
    job_id text primary key,
    ev_time timestamptz not null,
    ev_source text not null,
    ev_id text not null,
    title text,
    family text,
    hard_to_recruit boolean not null default false
);
