-- Messages to employees about their LinkedIn connection (issue 16, TEAM "Messages to employees
-- from ingest"): a reconnect message goes once per employee and token expiry, ever — 7 days
-- before the expiry, at the expiry, or after LinkedIn refused the token (401), whichever comes
-- first — never again for the same expiry (recognition id
-- linkedin_reconnect:{employee_id}:{expires_on}). A row is written in the transaction that
-- publishes the message, so a broker away means no row and a new try at the next poll.
create table ingest_linkedin_reminders (
    employee_id text not null,
    -- the UTC date of the token's expiry the message is about
    expires_on date not null,
    reason text not null check (reason in ('expiring', 'expired', 'revoked')),
    -- the invitation the message hands out (a fresh one per message)
    invitation_id text not null,
    sent_at timestamptz not null default now(),
    primary key (employee_id, expires_on)
);

-- The company page admin's connect flow (issue 16 point 1): an invitation is for a member's
-- own account ('member') or for the company page through its admin's account
-- ('organization', scope rw_organization_admin).
alter table ingest_linkedin_invitations add column purpose text not null default 'member'
    check (purpose in ('member', 'organization'));

-- The page's token, from the admin who connected it last (checked an APPROVED ADMINISTRATOR
-- of the page with organizationAcls), encrypted at rest like the members' tokens; used for
-- the page's statistics and the webhook subscriptions instead of
-- INGEST_LINKEDIN_ORGANIZATION_TOKEN.
create table ingest_linkedin_organization_connections (
    organization_urn text primary key,
    employee_id text not null,
    admin_urn text not null,
    access_token bytea not null,
    refresh_token bytea,
    expires_at timestamptz not null,
    refresh_expires_at timestamptz,
    scopes text[] not null,
    revoked_at timestamptz,
    connected_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index ingest_linkedin_organization_connections_employee
    on ingest_linkedin_organization_connections (employee_id);
