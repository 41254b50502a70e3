-- LinkedIn connect flow (CONTRACT §8): invitations, the OAuth states they hand out, and each
-- employee's connection with its tokens encrypted at rest (services/ingest/tokens.py).

-- The employee's locale, for the connect pages (learnt from employee.upserted).
alter table ingest_employees add column locale text;

create table ingest_linkedin_invitations (
    invitation_id text primary key,
    employee_id text not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
);
create index ingest_linkedin_invitations_employee on ingest_linkedin_invitations (employee_id);

-- One `state` per authorize redirect: single use (deleted when the callback comes back).
create table ingest_linkedin_states (
    state text primary key,
    invitation_id text not null
        references ingest_linkedin_invitations (invitation_id) on delete cascade,
    expires_at timestamptz not null
);

-- access_token / refresh_token: key id || nonce || AES-GCM ciphertext, never plaintext.
create table ingest_linkedin_connections (
    employee_id text primary key,
    member_urn text not null,
    access_token bytea not null,
    refresh_token bytea,
    expires_at timestamptz not null,
    refresh_expires_at timestamptz,
    scopes text[] not null,
    revoked_at timestamptz,
    connected_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index ingest_linkedin_connections_member on ingest_linkedin_connections (member_urn);

-- Posts an employee registered by URL (POST /v1/linkedin/posts): polled for statistics with
-- the employee's token, without listing the member's posts (which needs r_member_social).
create table ingest_linkedin_registered_posts (
    post_id text primary key,
    employee_id text not null,
    registered_at timestamptz not null default now()
);
create index ingest_linkedin_registered_posts_employee
    on ingest_linkedin_registered_posts (employee_id);
