-- Least privilege (deploy/README.md "PostgreSQL roles"): the attribution service's own role,
-- ripples_attribution, reads and writes the tables of schema attribution (also those later
-- migrations add: default privileges) and reads the migration ledger (the schema check at
-- start); Grafana's role, ripples_grafana, reads only the dashboard views. The owner of the
-- schema runs the migrations. Granted only to roles that exist: create them before the first
-- migration run (the local stack and the tests run as the owner and have none).
do $$
begin
    if exists (select from pg_roles where rolname = 'ripples_attribution') then
        grant select on public.ripples_schema_migrations to ripples_attribution;
        grant usage on schema attribution to ripples_attribution;
        grant select, insert, update, delete on all tables in schema attribution
            to ripples_attribution;
        grant usage, select on all sequences in schema attribution to ripples_attribution;
        alter default privileges in schema attribution
            grant select, insert, update, delete on tables to ripples_attribution;
        alter default privileges in schema attribution
            grant usage, select on sequences to ripples_attribution;
    end if;
    if exists (select from pg_roles where rolname = 'ripples_grafana') then
        grant usage on schema attribution to ripples_grafana;
        grant select on
            attribution.reach_per_ring_per_day,
            attribution.credit_per_ring_per_day,
            attribution.top_sharers,
            attribution.ripple_nodes,
            attribution.ripple_edges
            to ripples_grafana;
    end if;
end
$$;
