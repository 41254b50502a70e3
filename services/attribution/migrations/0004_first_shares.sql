-- Each sharing employee's first share (earliest published_at of their employee posts), kept
-- up to date by the post upsert (store._refresh_first_shares) so the ring derivation does
-- not aggregate every post on every batch.
create table attribution.first_shares (
    employee_id text primary key,
    first_shared_at timestamptz not null
);

insert into attribution.first_shares (employee_id, first_shared_at)
select employee_id, min(published_at) from attribution.posts
where author_kind = 'employee' and employee_id is not null
group by employee_id;
