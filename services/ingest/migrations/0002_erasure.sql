-- Erasure everywhere (issue 14): a removal keeps the directory row as a tombstone (no
-- e-mail hash, no member URN, the time of the removal), so a late upsert older than the
-- removal cannot bring the personal fields back; the LinkedIn poller's removed members are
-- remembered by a keyed hash of the member URN only, so it neither polls them nor writes
-- their URN again while their token is still configured.
alter table ingest_employees add column removed_at timestamptz;

create table ingest_removed_members (
    member_hash text primary key,
    removed_at timestamptz not null
);
