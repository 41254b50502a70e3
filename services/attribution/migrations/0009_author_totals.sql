-- Running totals per employee author (issue 18): what the recognitions need of an employee's
-- posts (how many, their impressions, the first post, the last time counted), kept by each
-- batch for the posts it touched instead of summed over all of the employee's posts.
-- Equal to the aggregate below at every batch's end (tests/attribution/test_incremental.py).
create table attribution.author_totals (
    employee_id text primary key,
    posts bigint not null,
    impressions bigint not null,
    first_at timestamptz not null,
    counted_at timestamptz not null
);

insert into attribution.author_totals
select p.employee_id, count(*), coalesce(sum(m.impressions), 0),
    min(p.published_at), max(coalesce(m.impressions_at, p.published_at))
from attribution.posts p
left join attribution.post_metrics m on m.post_id = p.post_id
where p.author_kind = 'employee' and p.employee_id is not null
group by p.employee_id;
