-- Views for dashboards (Grafana's PostgreSQL data source). Rings are labelled as text:
-- 'company' (ring 0), '1', '2', ... and 'independent'. Days are UTC.

create view attribution.reach_per_ring_per_day as
select date_trunc('day', p.published_at at time zone 'UTC')::date as day,
       case when p.author_kind = 'company' then 'company'
            when r.ring is null then 'independent'
            else r.ring::text end as ring,
       count(*) as posts,
       coalesce(sum(m.impressions), 0)::bigint as impressions,
       coalesce(sum(m.members_reached), 0)::bigint as members_reached,
       coalesce(sum(m.reactions), 0)::bigint as reactions,
       coalesce(sum(m.comments), 0)::bigint as comments,
       coalesce(sum(m.reshares), 0)::bigint as reshares,
       coalesce(sum(m.clicks), 0)::bigint as clicks
from attribution.posts p
left join attribution.post_metrics m on m.post_id = p.post_id
left join attribution.placements r on r.employee_id = p.employee_id
group by 1, 2;

-- credit of applications (by applied_at) and hires (by hired_at), per model and ring,
-- erased applicants included as anonymous numbers
create view attribution.credit_per_ring_per_day as
with conversions as (
    select 'applied' as conversion, a.applied_at as at, c.model, c.employee_id, c.weight
    from attribution.credits c join attribution.applications a using (applicant_id)
    union all
    select 'hired', h.hired_at, c.model, c.employee_id, c.weight
    from attribution.credits c join attribution.hires h using (applicant_id)
    union all
    select 'applied', x.applied_at, c.model, c.employee_id, c.weight
    from attribution.erased_credits c join attribution.erased_conversions x using (conversion_id)
    where x.applied_at is not null
    union all
    select 'hired', x.hired_at, c.model, c.employee_id, c.weight
    from attribution.erased_credits c join attribution.erased_conversions x using (conversion_id)
    where x.hired_at is not null
)
select date_trunc('day', v.at at time zone 'UTC')::date as day,
       v.conversion,
       v.model,
       case when v.employee_id is null then 'company'
            when r.ring is null then 'independent'
            else r.ring::text end as ring,
       sum(v.weight) as credit
from conversions v
left join attribution.placements r on r.employee_id = v.employee_id
group by 1, 2, 3, 4;

-- all-time figures per sharer (credit under the linear model)
create view attribution.top_sharers as
with posts as (
    select p.employee_id, count(*) as posts, coalesce(sum(m.impressions), 0)::bigint as impressions,
           coalesce(sum(m.clicks), 0)::bigint as clicks
    from attribution.posts p left join attribution.post_metrics m on m.post_id = p.post_id
    where p.author_kind = 'employee'
    group by p.employee_id
), applied as (
    select c.employee_id, sum(c.weight) as credit from attribution.credits c
    join attribution.applications a using (applicant_id)
    where c.model = 'linear' and c.employee_id is not null group by c.employee_id
), hired as (
    select c.employee_id, sum(c.weight) as credit from attribution.credits c
    join attribution.hires h using (applicant_id)
    where c.model = 'linear' and c.employee_id is not null group by c.employee_id
)
select coalesce(p.employee_id, a.employee_id, h.employee_id) as employee_id,
       e.display_name,
       r.ring,
       coalesce(p.posts, 0) as posts,
       coalesce(p.impressions, 0) as impressions,
       coalesce(p.clicks, 0) as clicks,
       coalesce(a.credit, 0) as applicant_credit,
       coalesce(h.credit, 0) as hire_credit,
       (select count(*) from attribution.inspirers i
        where i.inspirer_id = coalesce(p.employee_id, a.employee_id, h.employee_id)) as inspired
from posts p
full join applied a on a.employee_id = p.employee_id
full join hired h on h.employee_id = coalesce(p.employee_id, a.employee_id)
left join attribution.employees e
    on e.employee_id = coalesce(p.employee_id, a.employee_id, h.employee_id)
left join attribution.placements r
    on r.employee_id = coalesce(p.employee_id, a.employee_id, h.employee_id);

create view attribution.ripple_edges as
select i.inspirer_id as source,
       i.employee_id as target,
       fr.ring as source_ring,
       tr.ring as target_ring,
       i.weight,
       i.exposure,
       i.exposed_at,
       tr.first_shared_at as target_first_shared_at
from attribution.inspirers i
left join attribution.placements fr on fr.employee_id = i.inspirer_id
left join attribution.placements tr on tr.employee_id = i.employee_id;
