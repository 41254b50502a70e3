-- Erasure everywhere (issue 14). The ledger keeps no name: a colleague's display name is
-- looked up in notifier_employees when a message is rendered (so a removal re-renders any
-- message not yet sent without it), and an erased applicant's hire recognitions keep only
-- a digest of the id.
update notifier_deliveries set facts = facts - 'colleague_display_name'
where facts ? 'colleague_display_name';

-- sha256 of erased applicant ids: a replayed hire recognition of one is not stored again
create table notifier_erased_applicants (
    applicant_hash text primary key
);
