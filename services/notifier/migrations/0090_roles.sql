-- Least privilege (deploy/README.md "PostgreSQL roles"): the notifier service's own role,
-- ripples_notifier, reads and writes the notifier tables and reads the migration ledger (the schema
-- check at start), nothing else; the owner of the schema runs the migrations. Granted only
-- when the role exists: create the roles before the first migration run (the local stack and
-- the tests run as the owner and have none).
do $$
declare
    item record;
begin
    if not exists (select from pg_roles where rolname = 'ripples_notifier') then
        return;
    end if;
    grant select on public.ripples_schema_migrations to ripples_notifier;
    for item in
        select tablename as name from pg_tables
        where schemaname = 'public' and tablename like 'notifier\_%'
    loop
        execute format(
            'grant select, insert, update, delete on public.%I to ripples_notifier', item.name);
    end loop;
    for item in
        select sequencename as name from pg_sequences
        where schemaname = 'public' and sequencename like 'notifier\_%'
    loop
        execute format('grant usage, select on sequence public.%I to ripples_notifier', item.name);
    end loop;
end
$$;
