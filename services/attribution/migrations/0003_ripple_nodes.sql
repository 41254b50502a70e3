-- The nodes of the ripple network, next to attribution.ripple_edges (0002): every employee
-- with a ring or a first share, as /v1/ripples lists them. ring is null for independent
-- sharers (as in ripple_edges and top_sharers); display_name is null once erased.
create view attribution.ripple_nodes as
select p.employee_id,
       e.display_name,
       p.ring,
       p.first_shared_at,
       (select count(*) from attribution.inspirers i
        where i.inspirer_id = p.employee_id) as inspired
from attribution.placements p
left join attribution.employees e on e.employee_id = p.employee_id;
