-- Webhook endpoint management: secret rotation with an overlap, and endpoints in the audit log.
--
-- Rotating an endpoint's signing secret keeps the old one, encrypted in vendorflow.secrets under
-- the name 'previous_signing_secret', until `previous_secret_expires_at`: until then every
-- delivery carries two signatures (the new secret's and the old one's, as the Standard Webhooks
-- `webhook-signature` header allows), so a receiver can switch to the new secret at any moment of
-- the overlap; after it, only the new secret signs. NULL: no rotation is in progress.
ALTER TABLE vendorflow.webhook_endpoints ADD COLUMN previous_secret_expires_at timestamptz;
-- When the signing secret was last rotated (NULL: never).
ALTER TABLE vendorflow.webhook_endpoints ADD COLUMN secret_rotated_at timestamptz;

-- Operators create, disable, enable, delete endpoints and rotate their secrets: audited with the
-- endpoint as target.
ALTER TABLE vendorflow.admin_audit DROP CONSTRAINT admin_audit_target_kind_known;
ALTER TABLE vendorflow.admin_audit ADD CONSTRAINT admin_audit_target_kind_known
    CHECK (target_kind IN ('run', 'vendor', 'delivery', 'session', 'endpoint'));
