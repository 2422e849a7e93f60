//! Secrets that arrive in requests are encrypted at once, in the request's transaction, and are
//! never stored anywhere else (not in the vendor row, not in the run's input).

use domain::bank::BankAccount;
use secrecy::SecretString;
use sqlx::PgConnection;
use uuid::Uuid;

use store::secrets::{Keyring, SecretsError};

/// The secret name of a clearing vendor's bank account, owned by its `vendors` row. The value is
/// `bank:branch:account`, the form the `open_terminal` step reads.
pub const BANK_ACCOUNT_SECRET: &str = "bank_account";

/// Stores a vendor's bank account, encrypted under `keyring`, in the caller's transaction.
pub(crate) async fn store_bank_account(
    keyring: &Keyring,
    conn: &mut PgConnection,
    vendor_id: Uuid,
    account: &BankAccount,
) -> Result<(), SecretsError> {
    let value = SecretString::from(format!(
        "{}:{}:{}",
        account.bank(),
        account.branch(),
        account.expose_account_number()
    ));
    let reference = store::secrets::SecretRef::new("vendors", vendor_id, BANK_ACCOUNT_SECRET);
    store::secrets::put(conn, keyring, &reference, &value).await?;
    Ok(())
}
