-- Crypto-shredding (issue 14; docs/security.md "Topics"): a hire recognition on
-- ripples.recognitions names its applicant by the applicant's key id (kid), the contract's
-- recognition id sealed under the applicant's key. notifier_applicant_kids maps the kids the
-- notifier opened to the real applicant id (so that an erasure whose key is already shredded
-- still finds the applicant's hire recognitions); erasure deletes the applicant's rows.
-- notifier_erased_kids: the kids of erased applicants; a later record under one is dropped.
create table notifier_applicant_kids (
    kid text primary key,
    applicant_id text not null
);
create index notifier_applicant_kids_applicant on notifier_applicant_kids (applicant_id);

create table notifier_erased_kids (
    kid text primary key
);
