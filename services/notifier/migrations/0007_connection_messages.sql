-- Messages about the employee's own LinkedIn connection (ripples.linkedin.connection.v1 from
-- ingest: kinds linkedin_invitation and linkedin_reconnect) share the ledger with the
-- recognitions: one row per id, sent at most once. `link` holds what such a message says
-- besides the employee's name: {"url", "expires_at", "reason"}. The url is a signed invitation
-- (a credential until it expires), so it is cleared once the delivery is settled.
alter table notifier_deliveries add column link jsonb;
