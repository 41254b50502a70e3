-- Crypto-shredding (issue 14; services/ingest/keys.py, docs/security.md "Crypto-shredding"):
-- one random key per person whose personal fields ingest seals on the topics. `subject` links
-- the key to its person (`employee:{employee_id}`, or `applicant:{keyed hash}` — never the
-- applicant id itself) while it is theirs; an erasure sets it null at once (a later event
-- about the same person gets a new key) and schedules the key's end (`shred_after`): past
-- it the key is never served again and the row is deleted (the sweep). `key` is the raw key,
-- or, when `wrapped`, the key encrypted with INGEST_TOKEN_KEYS as the LinkedIn tokens are
-- (services/ingest/tokens.py), bound to its kid.
create table ingest_keys (
    kid text primary key,
    subject text unique,
    key bytea not null,
    wrapped boolean not null,
    created_at timestamptz not null default now(),
    shred_after timestamptz
);

-- The sweep deletes the rows past their grace.
create index ingest_keys_shred_after on ingest_keys (shred_after) where shred_after is not null;
