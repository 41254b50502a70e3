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
