-- What the provider steps learn about each vendor at SUMIT, and the payments and documents they
-- record. The vendor's API keys and bank account are not here: they live encrypted in
-- vendorflow.secrets (owner 'vendors', names 'provider_api_key', 'provider_api_public_key',
-- 'bank_account'); this table says only whether the keys are known and whether they work.

CREATE TABLE vendorflow.vendor_provider_accounts (
    vendor_id             uuid PRIMARY KEY REFERENCES vendorflow.vendors (id),
    provider              text NOT NULL DEFAULT 'sumit' CONSTRAINT provider_account_provider_known CHECK (provider = 'sumit'),
    -- The vendor's organization at the provider; NULL when the organization is known to exist
    -- (its corporate number was refused as a duplicate) but its id is not.
    company_id            bigint,
    -- missing: the organization exists and its keys are unknown (an operator must supply them);
    -- unverified: keys are stored and not yet proven by an authenticated call;
    -- active: keys are stored and worked; refused: the provider refused the stored keys.
    keys_state            text NOT NULL CONSTRAINT provider_account_keys_state_known
                          CHECK (keys_state IN ('missing', 'unverified', 'active', 'refused')),
    -- Where the stored keys came from: the create call's answer, or an operator.
    keys_source           text CONSTRAINT provider_account_keys_source_known CHECK (keys_source IN ('created', 'operator')),
    -- Why the keys are missing or refused, in words for an operator.
    keys_problem          text,
    keys_verified_at      timestamptz,
    -- none: no terminal asked for; requested: openupayterminal answered; approved: the approval
    -- arrived (signal or sandbox poll).
    terminal_state        text NOT NULL DEFAULT 'none' CONSTRAINT provider_account_terminal_state_known
                          CHECK (terminal_state IN ('none', 'requested', 'approved')),
    terminal_requested_at timestamptz,
    terminal_approved_at  timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT provider_account_keys_need_company CHECK (keys_state = 'missing' OR company_id IS NOT NULL)
);
-- One organization belongs to one vendor.
CREATE UNIQUE INDEX vendor_provider_accounts_company ON vendorflow.vendor_provider_accounts (provider, company_id)
    WHERE company_id IS NOT NULL;

-- Card charges on vendors' terminals, approved or declined, as the provider reported them. Only
-- the last digits of the card and the approval number are kept, never a card number or a token.
CREATE TABLE vendorflow.vendor_payments (
    id                     uuid PRIMARY KEY,
    vendor_id              uuid NOT NULL REFERENCES vendorflow.vendors (id),
    run_id                 uuid,
    -- The marketplace's order id, sent to the provider as the charge's UniqueIdentifier.
    order_id               text NOT NULL,
    provider_company_id    bigint NOT NULL,
    provider_payment_id    bigint NOT NULL,
    approved               boolean NOT NULL,
    amount_agorot          bigint NOT NULL,
    auth_number            text,
    card_last4             text CONSTRAINT vendor_payment_last4_only CHECK (card_last4 IS NULL OR card_last4 ~ '^[0-9]{0,4}$'),
    decline_code           text,
    decline_description    text,
    -- The document the charge issued, when the provider said (a lookup after a lost answer does not).
    provider_document_id   bigint,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vendor_payment_once UNIQUE (provider_company_id, provider_payment_id)
);
CREATE INDEX vendor_payments_order ON vendorflow.vendor_payments (vendor_id, order_id);

-- Documents (invoices, receipts, ...) issued in vendors' names, by a charge or on their own.
CREATE TABLE vendorflow.vendor_documents (
    id                     uuid PRIMARY KEY,
    vendor_id              uuid NOT NULL REFERENCES vendorflow.vendors (id),
    run_id                 uuid,
    -- 'charge' for the document a charge issued, 'document' for one issued on its own.
    source                 text NOT NULL CONSTRAINT vendor_document_source_known CHECK (source IN ('charge', 'document')),
    -- The marketplace's reference: the order id of a charge, or the document request's reference.
    reference              text NOT NULL,
    provider_company_id    bigint NOT NULL,
    provider_document_id   bigint NOT NULL,
    document_number        bigint,
    -- SUMIT DocumentType as its integer, when known.
    document_type          integer,
    total_agorot           bigint,
    download_url           text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vendor_document_once UNIQUE (provider_company_id, provider_document_id)
);
-- A document request's reference is issued once per vendor.
CREATE UNIQUE INDEX vendor_documents_reference ON vendorflow.vendor_documents (vendor_id, reference)
    WHERE source = 'document';
CREATE INDEX vendor_documents_vendor ON vendorflow.vendor_documents (vendor_id, created_at);
