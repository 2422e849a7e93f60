-- Envelope-encrypted secrets, and the delivery side of outbound webhooks (endpoints, the fan-out
-- of outbox events to endpoints, and one delivery row per event and endpoint). The outbox itself
-- (0002) belongs to the engine, which only inserts into it; everything about delivery lives here.

-- Secrets (provider API keys, marketplace credentials, bank details, webhook signing secrets),
-- one row per (owner table, owner row, name). Each value is encrypted with its own random data key
-- (XChaCha20-Poly1305); the data key is wrapped by the master key named by `key_id`. The associated
-- data of both layers binds owner_table, owner_id and name (and the wrap binds key_id too), so a
-- ciphertext copied to another row or column does not decrypt. Nothing here is readable without
-- the master key except `fingerprint` (a keyed hash prefix) and `last4`, which are safe to show.
CREATE TABLE vendorflow.secrets (
    id           uuid PRIMARY KEY,
    owner_table  text NOT NULL CONSTRAINT secret_owner_table_is_identifier CHECK (owner_table ~ '^[a-z][a-z0-9_]{0,62}$'),
    owner_id     uuid NOT NULL,
    name         text NOT NULL CONSTRAINT secret_name_is_identifier CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- The envelope format; it is part of the associated data, so a later format can never be
    -- mistaken for this one.
    format       smallint NOT NULL DEFAULT 1 CONSTRAINT secret_format_known CHECK (format = 1),
    -- The id of the master key that wraps `wrapped_dek` (derived from the key itself).
    key_id       text NOT NULL CONSTRAINT secret_key_id_not_blank CHECK (btrim(key_id) <> ''),
    dek_nonce    bytea NOT NULL CONSTRAINT secret_dek_nonce_24_bytes CHECK (octet_length(dek_nonce) = 24),
    -- The 32-byte data key encrypted under the master key, with its 16-byte tag.
    wrapped_dek  bytea NOT NULL CONSTRAINT secret_wrapped_dek_48_bytes CHECK (octet_length(wrapped_dek) = 48),
    nonce        bytea NOT NULL CONSTRAINT secret_nonce_24_bytes CHECK (octet_length(nonce) = 24),
    ciphertext   bytea NOT NULL CONSTRAINT secret_ciphertext_has_tag CHECK (octet_length(ciphertext) >= 16),
    fingerprint  text NOT NULL CONSTRAINT secret_fingerprint_hex CHECK (fingerprint ~ '^[0-9a-f]{8}$'),
    last4        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secret_owner_name_unique UNIQUE (owner_table, owner_id, name)
);

-- Webhook endpoints of a marketplace. The signing secret is not a column: it is stored encrypted
-- in vendorflow.secrets under (owner_table 'webhook_endpoints', owner_id = id, name 'signing_secret').
CREATE TABLE vendorflow.webhook_endpoints (
    id               uuid PRIMARY KEY,
    marketplace_id   uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    url              text NOT NULL CONSTRAINT webhook_endpoint_url_is_http CHECK (url ~ '^https?://[^[:space:]]+$'),
    -- The event types this endpoint receives; NULL means every type.
    event_types      text[] CONSTRAINT webhook_endpoint_event_types_not_empty
                     CHECK (event_types IS NULL OR cardinality(event_types) > 0),
    enabled          boolean NOT NULL DEFAULT true,
    -- Why the endpoint was disabled (for example its URL answered 410 Gone), in words.
    disabled_reason  text,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoint_disabled_has_reason
        CHECK (enabled = (disabled_at IS NULL) AND (enabled OR disabled_reason IS NOT NULL))
);
CREATE INDEX webhook_endpoints_marketplace ON vendorflow.webhook_endpoints (marketplace_id) WHERE enabled;

-- One row per outbox event that has been fanned out to the endpoints of its marketplace (zero or
-- more deliveries). The primary key makes the fan-out happen exactly once, however many relays run.
CREATE TABLE vendorflow.webhook_fanout (
    outbox_id      uuid PRIMARY KEY REFERENCES vendorflow.outbox (id) ON DELETE CASCADE,
    deliveries     integer NOT NULL CONSTRAINT webhook_fanout_deliveries_non_negative CHECK (deliveries >= 0),
    fanned_out_at  timestamptz NOT NULL DEFAULT now()
);

-- The relay's one-row state. `fanout_watermark` is an outbox id below which every row is known to
-- be fanned out, so the search for new events scans only recent outbox rows. It advances only to a
-- point a configurable look-back behind the present (outbox ids are UUIDv7, so they are ordered by
-- the time they were made), which leaves room for transactions that commit after later ones.
CREATE TABLE vendorflow.webhook_relay_state (
    singleton         boolean PRIMARY KEY DEFAULT true CONSTRAINT webhook_relay_state_one_row CHECK (singleton),
    fanout_watermark  uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vendorflow.webhook_relay_state DEFAULT VALUES;

-- One delivery per (event, endpoint): its attempts, its state and its dead letter.
-- `next_attempt_at` of a pending row is when it is due; a relay that claims a row moves it forward
-- by a short lease and sets a fresh `claim_token`, so a relay that dies mid-send leaves a row that
-- becomes due again by itself, and the late record of a relay that lost its lease changes nothing.
CREATE TABLE vendorflow.webhook_deliveries (
    id                uuid PRIMARY KEY,
    outbox_id         uuid NOT NULL REFERENCES vendorflow.outbox (id) ON DELETE CASCADE,
    endpoint_id       uuid NOT NULL REFERENCES vendorflow.webhook_endpoints (id) ON DELETE CASCADE,
    -- Copied from the endpoint so that listings are scoped by marketplace without a join.
    marketplace_id    uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    event_type        text NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CONSTRAINT webhook_delivery_status_known CHECK (status IN ('pending', 'delivered', 'dead')),
    -- Attempts started (counted when claimed, so a crash mid-send still counts the try).
    attempt           integer NOT NULL DEFAULT 0 CONSTRAINT webhook_delivery_attempt_non_negative CHECK (attempt >= 0),
    next_attempt_at   timestamptz,
    claim_token       uuid,
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    last_duration_ms  bigint,
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_delivery_once_per_endpoint UNIQUE (outbox_id, endpoint_id),
    CONSTRAINT webhook_delivery_pending_is_scheduled CHECK (status <> 'pending' OR next_attempt_at IS NOT NULL),
    CONSTRAINT webhook_delivery_delivered_has_time CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
-- The relay's hot path: due pending deliveries only.
CREATE INDEX webhook_deliveries_due ON vendorflow.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- Listings for the admin: a marketplace's deliveries newest first, and its dead letters.
CREATE INDEX webhook_deliveries_marketplace ON vendorflow.webhook_deliveries (marketplace_id, id);
CREATE INDEX webhook_deliveries_dead ON vendorflow.webhook_deliveries (marketplace_id, id) WHERE status = 'dead';
CREATE INDEX webhook_deliveries_endpoint_pending ON vendorflow.webhook_deliveries (endpoint_id) WHERE status = 'pending';
