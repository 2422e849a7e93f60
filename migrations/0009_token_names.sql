-- Token names, and the command line in the audit log.
--
-- A token's free-form `label` becomes its `name`: the person or system it was made for ("dana",
-- "shop backend"), shown wherever the token acts (audit log, dashboard, run history) instead of
-- a fragment of its id. Existing tokens keep their label as their name.
ALTER TABLE vendorflow.api_tokens RENAME COLUMN label TO name;

-- Operators also act from the command line (`vendorflow runs retry|resume|pause|cancel|signal`),
-- which holds the database itself rather than a token: its entries have no token, the channel
-- `cli`, and name their actor (`--actor`, else the OS user). Every entry now records who acted by
-- name at the time it was written: a token's name, or the command line's actor. Entries written
-- before this migration have none; readers fall back to the token's current name.
ALTER TABLE vendorflow.admin_audit ALTER COLUMN token_id DROP NOT NULL;
ALTER TABLE vendorflow.admin_audit ADD COLUMN actor text;
ALTER TABLE vendorflow.admin_audit DROP CONSTRAINT admin_audit_channel_known;
ALTER TABLE vendorflow.admin_audit ADD CONSTRAINT admin_audit_channel_known
    CHECK (channel IN ('dashboard', 'api', 'cli'));
-- The dashboard and the admin API always act with a token; the command line always names its
-- actor.
ALTER TABLE vendorflow.admin_audit ADD CONSTRAINT admin_audit_who_known
    CHECK (CASE WHEN channel = 'cli' THEN actor IS NOT NULL AND btrim(actor) <> ''
                ELSE token_id IS NOT NULL END);
