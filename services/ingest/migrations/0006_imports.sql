-- Spreadsheet imports (CONTRACT §11; services/ingest/imports.py): the ids of the import events
-- the broker acknowledged (`import:{sha256 of the row}`), so re-importing a file publishes
-- only the rows whose content changed.
create table ingest_imports (
    id text primary key,
    accepted_at timestamptz not null default now()
);
