-- An onboarding whose corporate number already belongs to another vendor of the same marketplace
-- is refused at the request (409 naming that vendor). The lookup is served by this index; it is
-- not unique because vendors stored before the rule may already share a number, and the request
-- path serialises on a transaction-scoped advisory lock of (marketplace, corporate number)
-- instead (store::vendors::lock_corporate_number).
CREATE INDEX vendors_marketplace_corporate_number
    ON vendorflow.vendors (marketplace_id, corporate_number);
