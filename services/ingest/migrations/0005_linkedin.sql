-- LinkedIn's daily limits are kept per application and per member ("Rate Limits": "Application
-- — the total number of calls that your application can make in a day. Member — the total
-- number of calls that a single member per application can make in a day"; they reset at
-- midnight UTC). One row per UTC day and scope: 'application', or 'member:' + the member's
-- keyed hash (services/ingest/directory.member_hash; never the URN).
alter table ingest_linkedin_budget add column scope text not null default 'application';
alter table ingest_linkedin_budget drop constraint ingest_linkedin_budget_pkey;
alter table ingest_linkedin_budget add primary key (day, scope);

-- Webhook notifications may name a post by its activity (sourcePost = urn:li:activity:…)
-- beside the share/ugcPost (decoratedSourcePost.entity): each pair seen is kept, so a later
-- notification with only the activity joins the same post_id.
create table ingest_linkedin_activities (
    activity_urn text primary key,
    post_id text not null
);
