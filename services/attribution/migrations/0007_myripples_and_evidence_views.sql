-- The employee's own figures (GET /v1/employees/{employee_id}/ripples) and the results
-- dashboard's evidence panels (issue 17 parts 6 and 7; services/attribution/README.md
-- "Dashboard views"). Days are UTC, as in 0002.

-- the employee's figures read an erased applicant's credit by employee and model
create index erased_credits_by_employee on attribution.erased_credits (employee_id, model);

-- employee posts per day and latest origin (CONTRACT §10 content_origin)
create view attribution.reach_per_origin_per_day as
select date_trunc('day', p.published_at at time zone 'UTC')::date as day,
       p.origin,
       count(*) as posts,
       coalesce(sum(m.impressions), 0)::bigint as impressions,
       coalesce(sum(m.clicks), 0)::bigint as clicks
from attribution.posts p
left join attribution.post_metrics m on m.post_id = p.post_id
where p.author_kind = 'employee'
group by 1, 2;

-- per employee and day of their posts: what §10 drivers ranks (mean impressions per post,
-- number of posts, followers of the latest record when it has them); no names
create view attribution.employee_reach_per_day as
select date_trunc('day', p.published_at at time zone 'UTC')::date as day,
       p.employee_id,
       count(*) as posts,
       coalesce(sum(m.impressions), 0)::bigint as impressions,
       max(case when e.upsert_time is not null then e.followers end) as followers
from attribution.posts p
left join attribution.post_metrics m on m.post_id = p.post_id
left join attribution.employees e on e.employee_id = p.employee_id
where p.author_kind = 'employee' and p.employee_id is not null
group by 1, 2;

-- applications per day and job family (a job's family from its latest job.upserted, null for
-- jobs never upserted); a family is hard to recruit when any job of it is flagged (§10 jobs);
-- erased applicants included as anonymous numbers
create view attribution.applicants_per_family_per_day as
with applications as (
    select a.applied_at as at, a.job_id,
           exists(select 1 from attribution.touches t where t.applicant_id = a.applicant_id)
               as attributed
    from attribution.applications a
    union all
    select x.applied_at, x.job_id, x.attributed
    from attribution.erased_conversions x where x.applied_at is not null
)
select date_trunc('day', v.at at time zone 'UTC')::date as day,
       j.family,
       exists(select 1 from attribution.jobs k
              where k.hard_to_recruit and k.family is not distinct from j.family)
           as hard_to_recruit,
       count(*) as applicants,
       count(*) filter (where v.attributed) as attributed
from applications v
left join attribution.jobs j on j.job_id = v.job_id
group by 1, 2;

-- applicant credit per day (by applied_at), model, job family and ring label (as 0002)
create view attribution.credit_per_family_per_day as
with credit as (
    select a.applied_at as at, a.job_id, c.model, c.employee_id, c.weight
    from attribution.credits c join attribution.applications a using (applicant_id)
    union all
    select x.applied_at, x.job_id, c.model, c.employee_id, c.weight
    from attribution.erased_credits c join attribution.erased_conversions x using (conversion_id)
    where x.applied_at is not null
)
select date_trunc('day', v.at at time zone 'UTC')::date as day,
       v.model,
       j.family,
       case when v.employee_id is null then 'company'
            when r.ring is null then 'independent'
            else r.ring::text end as ring,
       sum(v.weight) as credit
from credit v
left join attribution.jobs j on j.job_id = v.job_id
left join attribution.placements r on r.employee_id = v.employee_id
group by 1, 2, 3, 4;

-- /v1/sharers by day, so the top sharers follow the dashboard's time range and model: posts
-- and reach by published_at (model null), applicant credit by applied_at and hire credit by
-- hired_at per model, colleagues inspired by the colleague's first share (model null). The
-- same names as top_sharers (0002) and ripple_nodes (0003): display_name, null once erased.
create view attribution.sharer_figures_per_day as
with figures as (
    select p.published_at as at, p.employee_id, null::text as model,
           count(*) as posts, coalesce(sum(m.impressions), 0)::bigint as impressions,
           coalesce(sum(m.clicks), 0)::bigint as clicks,
           0::float8 as applicant_credit, 0::float8 as hire_credit, 0::bigint as inspired
    from attribution.posts p left join attribution.post_metrics m on m.post_id = p.post_id
    where p.author_kind = 'employee' and p.employee_id is not null
    group by 1, 2
    union all
    select a.applied_at, c.employee_id, c.model, 0, 0, 0, sum(c.weight), 0, 0
    from attribution.credits c join attribution.applications a using (applicant_id)
    where c.employee_id is not null group by 1, 2, 3
    union all
    select x.applied_at, c.employee_id, c.model, 0, 0, 0, sum(c.weight), 0, 0
    from attribution.erased_credits c join attribution.erased_conversions x using (conversion_id)
    where c.employee_id is not null and x.applied_at is not null group by 1, 2, 3
    union all
    select h.hired_at, c.employee_id, c.model, 0, 0, 0, 0, sum(c.weight), 0
    from attribution.credits c join attribution.hires h using (applicant_id)
    where c.employee_id is not null group by 1, 2, 3
    union all
    select x.hired_at, c.employee_id, c.model, 0, 0, 0, 0, sum(c.weight), 0
    from attribution.erased_credits c join attribution.erased_conversions x using (conversion_id)
    where c.employee_id is not null and x.hired_at is not null group by 1, 2, 3
    union all
    select r.first_shared_at, i.inspirer_id, null, 0, 0, 0, 0, 0, count(*)
    from attribution.inspirers i join attribution.placements r on r.employee_id = i.employee_id
    where r.first_shared_at is not null group by 1, 2
)
select date_trunc('day', f.at at time zone 'UTC')::date as day,
       f.employee_id,
       e.display_name,
       r.ring,
       f.model,
       sum(f.posts)::bigint as posts,
       sum(f.impressions)::bigint as impressions,
       sum(f.clicks)::bigint as clicks,
       sum(f.applicant_credit) as applicant_credit,
       sum(f.hire_credit) as hire_credit,
       sum(f.inspired)::bigint as inspired
from figures f
left join attribution.employees e on e.employee_id = f.employee_id
left join attribution.placements r on r.employee_id = f.employee_id
group by 1, 2, 3, 4, 5;

-- §10 bootstrap intervals per ISO week (Monday 00:00 UTC to the next), written by the
-- attribution worker from the same code as /v1/summary (services/attribution/weekly.py), for
-- the dashboard's bands: statistic is reach_ratio, lift, baseline_adjusted or
-- own_vs_prepared; value is the summary's point value, low/high its interval (null with it)
create table attribution.weekly_evidence (
    week_start timestamptz not null,
    week_end timestamptz not null,
    statistic text not null,
    value double precision,
    low double precision,
    high double precision,
    level double precision not null,
    samples integer not null,
    seed bigint not null,
    refreshed_at timestamptz not null,
    primary key (week_start, statistic)
);

do $$
begin
    if exists (select from pg_roles where rolname = 'ripples_attribution') then
        grant select, insert, update, delete on attribution.weekly_evidence
            to ripples_attribution;
        grant select on
            attribution.reach_per_origin_per_day,
            attribution.employee_reach_per_day,
            attribution.applicants_per_family_per_day,
            attribution.credit_per_family_per_day,
            attribution.sharer_figures_per_day
            to ripples_attribution;
    end if;
    if exists (select from pg_roles where rolname = 'ripples_grafana') then
        grant usage on schema attribution to ripples_grafana;
        grant select on
            attribution.reach_per_origin_per_day,
            attribution.employee_reach_per_day,
            attribution.applicants_per_family_per_day,
            attribution.credit_per_family_per_day,
            attribution.sharer_figures_per_day,
            attribution.weekly_evidence
            to ripples_grafana;
    end if;
end
$$;
