-- Claims that later steps check, and closed failure reasons (issues 13 and 14).

-- A claim token per claim: every later step of a claimed delivery (the start of an attempt,
-- its result, a postponement) changes the row only while the row still carries the token it
-- was claimed with. A replica whose claim ran out and was taken over does nothing, so a
-- recognition is never sent by two replicas.
alter table notifier_deliveries add column claim_token uuid;

-- Why a delivery is suppressed, failed, or waiting for its next attempt: a closed set, shown
-- by GET /v1/recognitions (last_error keeps the operator's detail and is not exposed).
alter table notifier_deliveries add column reason text check (reason in (
    'opted_out', 'channel_none', 'no_notify', 'stale', 'address_not_allowed', 'rejected',
    'too_large', 'server_error', 'rate_limited', 'timeout', 'connection_error', 'interrupted',
    'max_attempts'));

update notifier_deliveries set reason = case
        when last_error = 'opted out' then 'opted_out'
        when last_error = 'no notify channel' then 'channel_none'
        when last_error in ('employee removed', 'no employee record') then 'no_notify'
        when last_error like 'gave up after %' then 'max_attempts'
        when last_error like 'refused: %' then 'rejected'
        when last_error like 'interrupted: %' then 'interrupted'
        when last_error like 'http_429%' or last_error = 'slack: ratelimited' then 'rate_limited'
        when last_error like 'http_5%' or last_error like 'smtp_4%' then 'server_error'
        when last_error like 'timeout%' or last_error = 'http_408' then 'timeout'
        when last_error like 'connection: %' or last_error like 'error: %' then 'connection_error'
    end
where last_error is not null and status <> 'sent';

-- Everyone's ledger in pages (keyset on due_at, recognition_id).
create index notifier_deliveries_page on notifier_deliveries (due_at, recognition_id);
