//! End-to-end tests of `vendorflow webhooks …` against a fresh database: the binary creates,
//! lists, shows, filters, disables, enables, rotates and deletes an endpoint; the effects and the
//! audit log (channel `cli`, target `endpoint`) are checked in the database, and the secret is
//! printed only by `create` and `rotate-secret`.

use std::process::{Command, Output};

use secrecy::ExposeSecret;
use testkit::TestDatabase;
use uuid::Uuid;

struct Setup {
    db: TestDatabase,
    marketplace: Uuid,
    master_key: String,
}

impl Setup {
    async fn new() -> Setup {
        let db = TestDatabase::create().await;
        let mut conn = db.pool.acquire().await.unwrap();
        let marketplace = store::marketplaces::insert(&mut conn, "Shuk")
            .await
            .unwrap()
            .id;
        Setup {
            db,
            marketplace,
            master_key: store::secrets::MasterKey::generate()
                .to_base64()
                .expose_secret()
                .to_owned(),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vendorflow"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("VENDORFLOW_MASTER_KEY", &self.master_key)
            .env("VENDORFLOW_LOG", "warn")
            .output()
            .expect("run vendorflow")
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.cli(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
        (stdout, stderr)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    async fn endpoint(&self, id: Uuid) -> Option<store::webhooks::Endpoint> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        store::webhooks::get_endpoint(&mut conn, self.marketplace, id)
            .await
            .unwrap()
    }

    /// The endpoint audit entries: (action, result, actor, channel, data and detail).
    async fn audit(&self) -> Vec<(String, String, String, String, String)> {
        sqlx::query_as(
            "SELECT action, result, actor, channel,
                    coalesce(data::text, '') || ' ' || coalesce(detail, '')
             FROM vendorflow.admin_audit WHERE target_kind = 'endpoint' ORDER BY id",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn an_endpoint_is_managed_from_the_command_line_and_every_change_is_audited() {
    let s = Setup::new().await;
    let m = s.marketplace.to_string();

    // Bad input names the flag and stores nothing.
    let said = s.fails(&[
        "webhooks",
        "create",
        "--url",
        "https://shop.example/hooks",
        "--event",
        "vendor.redy",
        "--reason",
        "new receiver",
    ]);
    assert!(
        said.contains("--event: unknown event types: vendor.redy"),
        "{said}"
    );
    let said = s.fails(&["webhooks", "create", "--url", "https://shop.example/hooks"]);
    assert!(said.contains("--reason"), "{said}");
    let said = s.fails(&["webhooks", "create", "--url", "ftp://x", "--reason", "r"]);
    assert!(said.contains("--url"), "{said}");
    assert!(s.audit().await.is_empty());

    let (secret, said) = s.ok(&[
        "webhooks",
        "create",
        "--marketplace",
        &m,
        "--url",
        "https://shop.example/hooks",
        "--event",
        "vendor.ready",
        "--reason",
        "new receiver",
        "--actor",
        "dana",
    ]);
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id: Uuid = said
        .lines()
        .find_map(|l| l.strip_prefix("endpoint "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .expect("the endpoint's id on stderr");
    let e = s.endpoint(id).await.expect("stored");
    assert_eq!(e.event_types, Some(vec!["vendor.ready".to_owned()]));

    // The one marketplace is found without --marketplace; the secret is never listed.
    let (listed, _) = s.ok(&["webhooks", "list"]);
    assert!(
        listed.contains(&id.to_string()) && listed.contains("vendor.ready"),
        "{listed}"
    );
    let (json, _) = s.ok(&["webhooks", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json[0]["id"], id.to_string());
    let (shown, _) = s.ok(&["webhooks", "show", &id.to_string()]);
    assert!(shown.contains("https://shop.example/hooks"), "{shown}");
    for text in [&listed, &shown] {
        assert!(!text.contains("whsec_"));
    }
    let said = s.fails(&["webhooks", "show", &Uuid::now_v7().to_string()]);
    assert!(said.contains("ENDPOINT: no webhook endpoint"), "{said}");

    let id_text = id.to_string();
    let (said, _) = s.ok(&[
        "webhooks",
        "set-events",
        &id_text,
        "--all",
        "--reason",
        "everything",
    ]);
    assert!(said.contains("every event type"), "{said}");
    assert_eq!(s.endpoint(id).await.unwrap().event_types, None);

    s.ok(&["webhooks", "disable", &id_text, "--reason", "migration"]);
    let e = s.endpoint(id).await.unwrap();
    assert!(!e.enabled);
    assert_eq!(e.disabled_reason.as_deref(), Some("migration"));
    let said = s.fails(&["webhooks", "disable", &id_text, "--reason", "twice"]);
    assert!(said.contains("already disabled"), "{said}");
    s.ok(&["webhooks", "enable", &id_text, "--reason", "migration done"]);
    assert!(s.endpoint(id).await.unwrap().enabled);

    let said = s.fails(&[
        "webhooks",
        "rotate-secret",
        &id_text,
        "--overlap",
        "8d",
        "--reason",
        "too long",
    ]);
    assert!(said.contains("--overlap"), "{said}");
    let (new_secret, said) = s.ok(&[
        "webhooks",
        "rotate-secret",
        &id_text,
        "--overlap",
        "2h",
        "--reason",
        "yearly",
    ]);
    let new_secret = new_secret.trim().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(said.contains("the old secret signs too until"), "{said}");
    assert!(!said.contains("whsec_"));
    assert!(
        s.endpoint(id)
            .await
            .unwrap()
            .previous_secret_expires_at
            .is_some()
    );

    s.ok(&["webhooks", "delete", &id_text, "--reason", "shop closed"]);
    assert!(s.endpoint(id).await.is_none());

    let audit = s.audit().await;
    let actions: Vec<(&str, &str)> = audit.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        actions,
        vec![
            ("create_endpoint", "ok"),
            ("update_endpoint", "ok"),
            ("disable_endpoint", "ok"),
            ("disable_endpoint", "refused"),
            ("enable_endpoint", "ok"),
            ("rotate_endpoint_secret", "ok"),
            ("delete_endpoint", "ok"),
        ]
    );
    assert_eq!(audit[0].2, "dana");
    for row in &audit {
        assert_eq!(row.3, "cli");
        assert!(!row.4.contains("whsec_"), "{row:?}");
        assert!(!row.4.contains("shop.example"), "{row:?}");
    }
}
