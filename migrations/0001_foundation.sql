-- The foundation: vendorflow's own schema, marketplaces, their vendors and API tokens.
CREATE SCHEMA IF NOT EXISTS vendorflow;

CREATE TABLE vendorflow.marketplaces (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CONSTRAINT marketplace_name_not_blank CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A vendor of a marketplace. Only non-secret, validated fields live here; bank details and
-- provider keys live encrypted in their own table (see later migrations).
CREATE TABLE vendorflow.vendors (
    id                   uuid PRIMARY KEY,
    marketplace_id       uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    external_id          text NOT NULL,
    legal_name           text NOT NULL,
    corporate_number     text NOT NULL CONSTRAINT corporate_number_nine_digits CHECK (corporate_number ~ '^[0-9]{9}$'),
    business_type        text NOT NULL CONSTRAINT business_type_known
                         CHECK (business_type IN ('exempt_dealer', 'licensed_dealer', 'company', 'nonprofit', 'partnership')),
    email                text NOT NULL,
    phone_e164           text NOT NULL CONSTRAINT phone_is_israeli_e164 CHECK (phone_e164 ~ '^\+972[0-9]{8,9}$'),
    mode                 text NOT NULL CONSTRAINT mode_known CHECK (mode IN ('clearing', 'documents_only')),
    -- Whether the bank account passed its bank's own check rule (false: the bank has no known rule).
    bank_account_checked boolean,
    bank_account_last4   text,
    onboarding_state     text NOT NULL DEFAULT 'pending',
    provider_company_id  bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vendor_external_id_unique UNIQUE (marketplace_id, external_id),
    CONSTRAINT clearing_has_bank_account CHECK (mode <> 'clearing' OR bank_account_checked IS NOT NULL)
);

-- API tokens: only a SHA-256 hash of the token is stored; the token itself is shown once.
CREATE TABLE vendorflow.api_tokens (
    id              uuid PRIMARY KEY,
    marketplace_id  uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    role            text NOT NULL CONSTRAINT token_role_known CHECK (role IN ('backend', 'viewer', 'operator')),
    label           text NOT NULL DEFAULT '',
    token_hash      bytea NOT NULL CONSTRAINT token_hash_unique UNIQUE,
    -- The first characters of the token, to recognise it in listings without revealing it.
    token_prefix    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX api_tokens_marketplace ON vendorflow.api_tokens (marketplace_id);
