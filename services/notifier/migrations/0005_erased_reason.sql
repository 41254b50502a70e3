-- A hire recognition dropped unsent because its applicant was erased gets a closed reason of
-- its own ('erased'), like every other suppression, instead of a null reason.
alter table notifier_deliveries drop constraint notifier_deliveries_reason_check;
alter table notifier_deliveries add constraint notifier_deliveries_reason_check check (reason in (
    'opted_out', 'channel_none', 'no_notify', 'stale', 'erased', 'address_not_allowed',
    'rejected', 'too_large', 'server_error', 'rate_limited', 'timeout', 'connection_error',
    'interrupted', 'max_attempts'));
update notifier_deliveries set reason = 'erased'
where status = 'suppressed' and reason is null and last_error = 'applicant erased';
