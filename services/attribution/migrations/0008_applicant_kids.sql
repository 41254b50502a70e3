-- Crypto-shredding (issue 14; docs/security.md "Topics"): on ripples.applicants an
-- applicant's id is its key id (kid), the real id sealed under the applicant's own key.
-- applicant_kids maps the kids attribution opened to the real id (so that its credits and
-- hire recognitions go out keyed by the kid, the real id sealed under the same key, and an
-- erasure whose key is already shredded still finds its applicant); erasure deletes the
-- applicant's rows here. erased_kids: the kids of erased applicants (random, never linked to
-- a person again): any later record under one is dropped.
create table attribution.applicant_kids (
    kid text primary key,
    applicant_id text not null
);
create index applicant_kids_applicant on attribution.applicant_kids (applicant_id);

create table attribution.erased_kids (
    kid text primary key
);
