//! The development setup of a checkout, as `make run` (`vendorflow dev`) leaves it: the local
//! PostgreSQL cluster (its URL is what `scripts/pg.sh url` prints), the development master key
//! (`.data/dev-master-key`) and the development tokens with the API's address
//! (`.data/dev-tokens.json`).
//!
//! `dev` makes them; every other command run from the checkout finds them by itself when its
//! settings name no database or master key, and says so in one line on stderr. The development
//! key is used only with the development database: it is the key that database's secrets are
//! encrypted under, and no other.
//!
//! The key and the tokens are secrets. They live only in these files, which only their owner
//! may read (0600), under `.data/` beside the cluster's own data; they are never logged.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use store::tokens::Role;
use uuid::Uuid;

use crate::settings::Settings;

/// The script that runs the local cluster, relative to the checkout's root.
pub const CLUSTER_SCRIPT: &str = "scripts/pg.sh";
/// Where `dev` keeps its development master key.
pub const MASTER_KEY_FILE: &str = ".data/dev-master-key";
/// Where `dev` keeps its development tokens and the API's address.
pub const TOKENS_FILE: &str = ".data/dev-tokens.json";
/// The name of the marketplace `dev` makes (and finds again at every start).
pub const MARKETPLACE: &str = "Development marketplace";
/// The name earlier versions of `dev` gave every token they minted at each start.
const LEGACY_TOKEN_NAME: &str = "dev";

/// Whether the working directory is a vendorflow checkout (where `make run` runs).
pub fn in_checkout() -> bool {
    Path::new(CLUSTER_SCRIPT).exists()
}

fn cluster_script(command: &str) -> Command {
    let mut script = Command::new("bash");
    script.arg(CLUSTER_SCRIPT).arg(command);
    script
}

/// The local cluster's URL (`scripts/pg.sh url`), when run from a checkout.
pub fn cluster_url() -> anyhow::Result<Option<String>> {
    if !in_checkout() {
        return Ok(None);
    }
    let output = cluster_script("url")
        .output()
        .context("running scripts/pg.sh url")?;
    if !output.status.success() {
        bail!(
            "scripts/pg.sh url failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let url = String::from_utf8(output.stdout)
        .context("scripts/pg.sh url printed something that is not text")?
        .trim()
        .to_owned();
    Ok((!url.is_empty()).then_some(url))
}

/// Starts the local cluster (`scripts/pg.sh start`; nothing happens when it runs already) and
/// returns its URL.
pub fn start_cluster() -> anyhow::Result<String> {
    if !in_checkout() {
        bail!("no database URL is set and scripts/pg.sh is not here: run from the repository root");
    }
    let status = cluster_script("start")
        .status()
        .context("running scripts/pg.sh start")?;
    if !status.success() {
        bail!("scripts/pg.sh start failed");
    }
    cluster_url()?.context("scripts/pg.sh url printed no URL")
}

/// Writes `contents` to `path` readable and writable by its owner only (0600), replacing the file
/// whole (a temporary file renamed over it), so a reader never sees half a file.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Makes an existing secret file private (0600) if it is not: files written by earlier versions
/// were readable by everyone.
fn keep_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private (0600)", path.display()))?;
        }
    }
    Ok(())
}

/// The development master key, if `dev` has made one.
pub fn read_master_key() -> anyhow::Result<Option<SecretString>> {
    let path = Path::new(MASTER_KEY_FILE);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            keep_private(path)?;
            Ok(Some(SecretString::from(text.trim().to_owned())))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {MASTER_KEY_FILE}")),
    }
}

/// The development master key, made on first use (`dev` only).
pub fn master_key_or_create() -> anyhow::Result<SecretString> {
    if let Some(key) = read_master_key()? {
        return Ok(key);
    }
    let key = store::secrets::MasterKey::generate().to_base64();
    write_private(Path::new(MASTER_KEY_FILE), key.expose_secret().as_bytes())?;
    tracing::warn!(
        "generated a DEVELOPMENT master key in {MASTER_KEY_FILE}; never use it in production \
         (set VENDORFLOW_MASTER_KEY)"
    );
    Ok(key)
}

/// Fills in what the settings leave out from the checkout's development setup: the database
/// (the local cluster) when no URL is set, and, when `needs_key`, the development master key
/// when none is set and the database is the development one. Says in one line on stderr what it
/// took from where. Outside a checkout, it changes nothing.
pub fn complete(settings: &mut Settings, needs_key: bool) -> anyhow::Result<()> {
    let wants_key = needs_key && settings.master_key.is_none();
    let mut found = Vec::new();
    match &settings.database_url {
        None => {
            let Some(local) = cluster_url()? else {
                return Ok(());
            };
            found.push(format!(
                "the development database {local} (from {CLUSTER_SCRIPT} url)"
            ));
            settings.database_url = Some(SecretString::from(local));
            settings.development_database = true;
        }
        // A configured database needs nothing found, unless a key is wanted and this database
        // is the development one (a checkout whose script cannot answer has none).
        Some(_) if !wants_key => return Ok(()),
        Some(configured) => {
            settings.development_database = cluster_url()
                .ok()
                .flatten()
                .is_some_and(|local| configured.expose_secret() == local);
        }
    }
    if wants_key
        && settings.development_database
        && let Some(key) = read_master_key()?
    {
        settings.master_key = Some(key);
        found.push(format!("the development master key in {MASTER_KEY_FILE}"));
    }
    if !found.is_empty() {
        eprintln!(
            "vendorflow: using {} (make run's setup; set DATABASE_URL and \
             VENDORFLOW_MASTER_KEY to use others)",
            found.join(" and ")
        );
    }
    Ok(())
}

/// One development token as kept in the file.
#[derive(Serialize, Deserialize)]
struct KeptToken {
    id: Uuid,
    name: String,
    token: String,
}

/// The file's contents.
#[derive(Serialize, Deserialize)]
struct TokensFile {
    /// What the file is, for a person who opens it.
    about: String,
    marketplace_id: Uuid,
    /// The API's base URL `dev` serves at.
    api: String,
    backend: KeptToken,
    operator: KeptToken,
    viewer: KeptToken,
}

impl TokensFile {
    fn slot(&mut self, role: Role) -> &mut KeptToken {
        match role {
            Role::Backend => &mut self.backend,
            Role::Operator => &mut self.operator,
            Role::Viewer => &mut self.viewer,
        }
    }
}

/// A development token: its name and clear text.
pub struct DevToken {
    pub name: String,
    pub token: SecretString,
}

/// The development setup `dev` serves with: its API address and one token per role.
pub struct DevTokens {
    pub api: String,
    pub backend: DevToken,
    pub operator: DevToken,
    pub viewer: DevToken,
}

fn token_name(role: Role) -> String {
    format!("dev {}", role.as_str())
}

fn read_tokens_file() -> anyhow::Result<Option<TokensFile>> {
    let path = Path::new(TOKENS_FILE);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {TOKENS_FILE}")),
    };
    keep_private(path)?;
    Ok(serde_json::from_str(&text).ok())
}

fn into_dev(kept: KeptToken) -> DevToken {
    DevToken {
        name: kept.name,
        token: SecretString::from(kept.token),
    }
}

/// The development tokens `make run` keeps, if it has run in this checkout.
pub fn read_tokens() -> anyhow::Result<Option<DevTokens>> {
    Ok(read_tokens_file()?.map(|file| DevTokens {
        api: file.api,
        backend: into_dev(file.backend),
        operator: into_dev(file.operator),
        viewer: into_dev(file.viewer),
    }))
}

/// Whether `kept` is a live token of `marketplace_id` with `role`.
async fn still_valid(
    conn: &mut PgConnection,
    kept: &KeptToken,
    marketplace_id: Uuid,
    role: Role,
) -> anyhow::Result<bool> {
    let owner = store::tokens::authenticate(conn, &SecretString::from(kept.token.clone())).await?;
    Ok(owner.is_some_and(|owner| {
        owner.token_id == kept.id && owner.marketplace_id == marketplace_id && owner.role == role
    }))
}

/// The development tokens of `marketplace_id` (`dev` only): the ones kept in the file when they
/// still work, else new ones (the file was missing, or the database was reset or a token
/// revoked), written back to the file. Tokens earlier versions minted at every start (named
/// `dev`) are revoked, so only the kept ones work.
pub async fn dev_tokens(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    api: &str,
) -> anyhow::Result<(DevTokens, Vec<Role>)> {
    let placeholder = || KeptToken {
        id: Uuid::nil(),
        name: String::new(),
        token: String::new(),
    };
    let mut file = read_tokens_file()?.unwrap_or_else(|| TokensFile {
        about: String::new(),
        marketplace_id,
        api: api.to_owned(),
        backend: placeholder(),
        operator: placeholder(),
        viewer: placeholder(),
    });
    let mut minted = Vec::new();
    for role in [Role::Backend, Role::Operator, Role::Viewer] {
        let slot = file.slot(role);
        if !still_valid(conn, slot, marketplace_id, role).await? {
            let name = token_name(role);
            let created = store::tokens::create(conn, marketplace_id, role, &name).await?;
            *slot = KeptToken {
                id: created.id,
                name,
                token: created.token.expose_secret().to_owned(),
            };
            minted.push(role);
        }
    }
    let retired = store::tokens::revoke_named(conn, marketplace_id, LEGACY_TOKEN_NAME).await?;
    if retired > 0 {
        tracing::info!(
            retired,
            "revoked the development tokens earlier versions minted at every start"
        );
    }
    file.about = "The development tokens of `make run` (vendorflow dev) in this checkout, \
                  reused at every start; `vendorflow demo` reads them. Delete this file to have \
                  new ones minted. Never use them outside development."
        .to_owned();
    file.marketplace_id = marketplace_id;
    file.api = api.to_owned();
    let text = serde_json::to_string_pretty(&file).context("writing the development tokens")?;
    write_private(Path::new(TOKENS_FILE), text.as_bytes())?;
    let tokens = DevTokens {
        api: file.api,
        backend: into_dev(file.backend),
        operator: into_dev(file.operator),
        viewer: into_dev(file.viewer),
    };
    Ok((tokens, minted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_written_whole_and_readable_by_their_owner_only() {
        let dir = std::env::temp_dir().join(format!("vendorflow-local-{}", Uuid::new_v4()));
        let path = dir.join("secret");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            keep_private(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file is left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
