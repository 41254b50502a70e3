-- The employee's own preferences (CONTRACT §11), kept beside the HR record in
-- notifier_employees so that an HR upsert never resets them. Field by field: each has the
-- CloudEvent time of the preference event that set it (the latest wins); null = not set, the
-- HR value applies. A removal deletes the row (the address is personal data); removed_at
-- keeps a preference older than the removal from coming back.
create table notifier_preferences (
    employee_id text primary key,
    locale text,
    locale_at timestamptz,
    channel text,
    address text,
    notify_at timestamptz,
    opt_out boolean,
    opt_out_at timestamptz
);
