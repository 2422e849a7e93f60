//! The vendor's secrets the steps use, stored encrypted under the vendor's row
//! (`store::secrets`, owner table `vendors`): the provider keys the organization's creation
//! returned (or an operator entered), and the bank account the API stored for clearing vendors.
//! They are decrypted only for the call that needs them and live in `secrecy` types meanwhile.

use providers::sumit::Credentials;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;
use store::secrets::{Keyring, SecretRef, SecretsError};
use uuid::Uuid;

/// The owner table of a vendor's secrets (defined by the store, which also writes the keys an
/// operator supplies).
pub const OWNER_TABLE: &str = store::provider_records::VENDOR_SECRETS_TABLE;
/// The vendor's provider API key (secret, authenticates every call in its name).
pub const API_KEY: &str = store::provider_records::API_KEY_SECRET;
/// The vendor's provider public key (for payments.js tokenization in the vendor's name).
pub const API_PUBLIC_KEY: &str = store::provider_records::API_PUBLIC_KEY_SECRET;
/// The clearing vendor's bank account, `bank:branch:account`, stored by the API.
pub const BANK_ACCOUNT: &str = "bank_account";

fn reference(vendor_id: Uuid, name: &str) -> SecretRef<'_> {
    SecretRef::new(OWNER_TABLE, vendor_id, name)
}

/// Stores the vendor's provider keys (replacing any), on the caller's connection.
pub(crate) async fn store_keys(
    conn: &mut PgConnection,
    keyring: &Keyring,
    vendor_id: Uuid,
    api_key: &SecretString,
    api_public_key: &SecretString,
) -> Result<(), SecretsError> {
    store::secrets::put(conn, keyring, &reference(vendor_id, API_KEY), api_key).await?;
    store::secrets::put(
        conn,
        keyring,
        &reference(vendor_id, API_PUBLIC_KEY),
        api_public_key,
    )
    .await?;
    Ok(())
}

/// The vendor's credentials for organization `company_id`, if its API key is stored.
pub(crate) async fn credentials(
    conn: &mut PgConnection,
    keyring: &Keyring,
    vendor_id: Uuid,
    company_id: i64,
) -> Result<Option<Credentials>, SecretsError> {
    let key = store::secrets::get(conn, keyring, &reference(vendor_id, API_KEY)).await?;
    Ok(key.map(|api_key| Credentials {
        company_id,
        api_key,
    }))
}

/// Whether the vendor's API key is stored (without decrypting it).
pub(crate) async fn has_api_key(
    conn: &mut PgConnection,
    vendor_id: Uuid,
) -> Result<bool, SecretsError> {
    Ok(store::secrets::meta(conn, &reference(vendor_id, API_KEY))
        .await?
        .is_some())
}

/// A clearing vendor's bank account, decrypted for the terminal request.
pub(crate) struct BankDetails {
    pub(crate) bank: u16,
    pub(crate) branch: u16,
    pub(crate) account: SecretString,
}

impl std::fmt::Debug for BankDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankDetails")
            .field("bank", &self.bank)
            .field("branch", &self.branch)
            .field("account", &"[REDACTED]")
            .finish()
    }
}

/// Why the stored bank account cannot be used.
#[derive(Debug)]
pub(crate) enum BankError {
    Secret(SecretsError),
    Missing,
    Malformed,
}

/// Parses `bank:branch:account` (digits only, as the API writes it).
pub(crate) fn parse_bank(value: &SecretString) -> Option<BankDetails> {
    let mut parts = value.expose_secret().splitn(3, ':');
    let bank = parts.next()?.parse::<u16>().ok()?;
    let branch = parts.next()?.parse::<u16>().ok()?;
    let account = parts.next()?;
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(BankDetails {
        bank,
        branch,
        account: SecretString::from(account.to_owned()),
    })
}

/// The vendor's bank account, decrypted.
pub(crate) async fn bank_account(
    conn: &mut PgConnection,
    keyring: &Keyring,
    vendor_id: Uuid,
) -> Result<BankDetails, BankError> {
    let value = store::secrets::get(conn, keyring, &reference(vendor_id, BANK_ACCOUNT))
        .await
        .map_err(BankError::Secret)?
        .ok_or(BankError::Missing)?;
    parse_bank(&value).ok_or(BankError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_account_reads_from_bank_branch_account_and_never_shows_its_number() {
        let parsed = parse_bank(&SecretString::from("12:571:041116".to_owned())).unwrap();
        assert_eq!((parsed.bank, parsed.branch), (12, 571));
        assert_eq!(parsed.account.expose_secret(), "041116");
        assert!(!format!("{parsed:?}").contains("041116"));
        for bad in ["12:571", "x:571:1", "12:571:", "12:571:12a4", "70000:1:1"] {
            assert!(
                parse_bank(&SecretString::from(bad.to_owned())).is_none(),
                "{bad}"
            );
        }
    }
}
