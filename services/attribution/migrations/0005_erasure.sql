-- Erasure everywhere (issue 14). An erased applicant leaves no raw or pseudonymous id in
-- any table: its hire recognitions keep only a digest of the id (so the recognition stays
-- counted and is never emitted again), unsent output events about it are dropped, and the
-- anonymous numbers kept of its conversions keep the day only (an exact time next to a job
-- and a credited employee re-identifies a person).

update attribution.erased_conversions set
    applied_at = date_trunc('day', applied_at, 'UTC'),
    hired_at = date_trunc('day', hired_at, 'UTC');

-- hire:{employee_id}:{applicant_id} rows of applicants erased before this migration
update attribution.recognitions r set
    recognition_id = 'hire:' || r.employee_id || ':erased:' || e.applicant_hash
from attribution.erased_applicants e
where r.kind = 'hire'
    and starts_with(r.recognition_id, 'hire:' || r.employee_id || ':')
    and e.applicant_hash = encode(sha256(convert_to(
        substr(r.recognition_id, length('hire:' || r.employee_id || ':') + 1), 'UTF8')), 'hex');

-- unsent output events of earlier batches about applicants erased since
delete from attribution.outbox o
using attribution.erased_applicants e
where (o.topic = 'ripples.credits' and e.applicant_hash = encode(sha256(convert_to(
        convert_from(o.event, 'UTF8')::jsonb -> 'data' ->> 'applicant_id', 'UTF8')), 'hex'))
    or (o.topic = 'ripples.recognitions'
        and convert_from(o.event, 'UTF8')::jsonb -> 'data' ->> 'kind' = 'hire'
        and not exists (select from attribution.recognitions r
                        where r.recognition_id
                            = convert_from(o.event, 'UTF8')::jsonb -> 'data' ->> 'recognition_id'));
