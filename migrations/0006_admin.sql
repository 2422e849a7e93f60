-- The operators' dashboard and admin API: an append-only audit log of every operator action,
-- dashboard sessions, and the indexes the dashboard's filters need at a million runs.

-- Every operator action (and sign-in/sign-out), who did it, to what, why and with what result.
-- Written in the same transaction as the action when it succeeds; a refused action is written
-- after its transaction rolled back. There is no foreign key to the target: the audit log must
-- outlive runs removed by retention.
CREATE TABLE vendorflow.admin_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    marketplace_id  uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The token the operator signed in or called with, and its role at the time.
    token_id        uuid NOT NULL,
    role            text NOT NULL CONSTRAINT admin_audit_role_known CHECK (role IN ('viewer', 'operator')),
    channel         text NOT NULL CONSTRAINT admin_audit_channel_known CHECK (channel IN ('dashboard', 'api')),
    action          text NOT NULL CONSTRAINT admin_audit_action_not_blank CHECK (btrim(action) <> ''),
    target_kind     text NOT NULL CONSTRAINT admin_audit_target_kind_known
                    CHECK (target_kind IN ('run', 'vendor', 'delivery', 'session')),
    target_id       uuid,
    -- Required for every action that changes something; sign-in and sign-out have none.
    reason          text,
    result          text NOT NULL CONSTRAINT admin_audit_result_known CHECK (result IN ('ok', 'refused')),
    -- What happened, in words for an operator (the new status, or why it was refused).
    detail          text,
    -- Non-secret details (a bulk batch id, a signal name, a key fingerprint). Never a secret.
    data            jsonb
);
-- The audit page lists a marketplace's entries newest first; the run, vendor and delivery pages
-- list the entries about one target.
CREATE INDEX admin_audit_marketplace ON vendorflow.admin_audit (marketplace_id, id);
CREATE INDEX admin_audit_target ON vendorflow.admin_audit (target_id, id) WHERE target_id IS NOT NULL;

-- The audit log is append-only, like run history: rows are never changed.
CREATE FUNCTION vendorflow.refuse_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the admin audit log is append-only';
END;
$$;
CREATE TRIGGER admin_audit_append_only BEFORE UPDATE ON vendorflow.admin_audit
    FOR EACH ROW EXECUTE FUNCTION vendorflow.refuse_audit_update();

-- Dashboard sessions. The cookie holds a random session id; only its SHA-256 is stored, so a
-- database leak yields no usable session. The bearer token itself is never stored or put in a
-- cookie: a session points at the token's row, and revoking the token ends its sessions.
CREATE TABLE vendorflow.admin_sessions (
    id_hash         bytea PRIMARY KEY,
    token_id        uuid NOT NULL REFERENCES vendorflow.api_tokens (id) ON DELETE CASCADE,
    marketplace_id  uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    role            text NOT NULL CONSTRAINT admin_session_role_known CHECK (role IN ('viewer', 'operator')),
    -- The synchronizer token every form of this session carries in a hidden field.
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX admin_sessions_expires ON vendorflow.admin_sessions (expires_at);

-- The runs list filtered by status ("paused", "failed") newest first, and the counts per status,
-- would otherwise walk every run of the marketplace through runs_marketplace. Status already
-- takes part in the partial indexes of the hot path, so a status change is never a heap-only
-- update anyway: this index adds no write amplification to a worker advancing a run's steps.
CREATE INDEX runs_marketplace_status ON vendorflow.runs (marketplace_id, status, created_at, id)
    WHERE marketplace_id IS NOT NULL;

-- The vendors list, newest first, paginated by (created_at, id).
CREATE INDEX vendors_marketplace_created ON vendorflow.vendors (marketplace_id, created_at, id);

-- A vendor's charges on its page, newest first.
CREATE INDEX vendor_payments_vendor ON vendorflow.vendor_payments (vendor_id, created_at);
