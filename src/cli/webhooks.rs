//! `vendorflow webhooks …`: the command line's webhook endpoint management — create, list, show,
//! set-events, disable, enable, delete and rotate-secret — with the admin API's rules: every
//! change needs a reason and is written to the audit log in its own transaction (channel `cli`,
//! the actor's name, target `endpoint`); a change the endpoint's state refuses is rolled back and
//! audited as refused.
//!
//! A signing secret is printed exactly once, on stdout, by `create` and `rotate-secret`; it must
//! never appear in `list`, `show`, stderr, a log line or the audit log (nor the URL, which may
//! carry a token: the audit log gets ids, filters and overlaps only).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use store::secrets::Keyring;
use store::webhooks::{self as wstore, Endpoint, WebhookStoreError};
use uuid::Uuid;

use super::table::Table;

/// The webhook endpoint commands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommands {
    /// Register an endpoint; prints its id (stderr) and its signing secret (stdout, once).
    Create {
        /// The endpoint's URL (https; plain http only to private addresses in development).
        #[arg(long)]
        url: String,
        /// Only these event types (repeatable; see the OpenAPI document's `webhooks`); all
        /// events when absent.
        #[arg(long = "event")]
        events: Vec<String>,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// List the endpoints of a marketplace with their filters, state and backlog.
    List {
        #[arg(long)]
        marketplace: Option<Uuid>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one endpoint (never its secret).
    Show {
        endpoint: Uuid,
        #[arg(long)]
        marketplace: Option<Uuid>,
        #[arg(long)]
        json: bool,
    },
    /// Replace the event types an endpoint receives (`--all` for every type).
    SetEvents {
        endpoint: Uuid,
        /// The event types (repeatable).
        #[arg(long = "event", required_unless_present = "all")]
        events: Vec<String>,
        /// Every event type.
        #[arg(long, conflicts_with = "events")]
        all: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Stop delivering to an endpoint: no new deliveries, and its pending ones become dead
    /// letters (replayable once it is enabled again).
    Disable {
        endpoint: Uuid,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Deliver to a disabled endpoint again (events from now on).
    Enable {
        endpoint: Uuid,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete an endpoint with its secret and its deliveries (pending ones are never sent).
    Delete {
        endpoint: Uuid,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Give an endpoint a new signing secret (printed once); the old one keeps signing too
    /// during the overlap.
    RotateSecret {
        endpoint: Uuid,
        /// How long deliveries carry the old secret's signature too (`0s` to switch now; at
        /// most `7d`).
        #[arg(long, default_value = "24h")]
        overlap: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

impl WebhookCommands {
    /// Whether the command needs the master key (to encrypt a new secret).
    pub fn needs_master_key(&self) -> bool {
        matches!(
            self,
            WebhookCommands::Create { .. } | WebhookCommands::RotateSecret { .. }
        )
    }
}

/// What every change takes: why, who, and the marketplace to check the endpoint against.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Why (required, at most 500 characters); kept in the audit log.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who acts, for the audit log (default: the OS user, else `cli`).
    #[arg(long)]
    pub actor: Option<String>,
    /// The marketplace (may be left out when there is only one, or on the development
    /// database): create registers the endpoint in it, the others find the endpoint in it.
    #[arg(long)]
    pub marketplace: Option<Uuid>,
}

/// The longest reason kept (as the dashboard keeps).
const MAX_REASON_CHARS: usize = 500;

fn reason(change: &ChangeArgs) -> anyhow::Result<String> {
    let reason = change.reason.trim();
    if reason.is_empty() {
        bail!("--reason: a reason is required; it is recorded in the audit log");
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        bail!("--reason: the reason is longer than {MAX_REASON_CHARS} characters");
    }
    if reason.chars().any(char::is_control) {
        bail!("--reason: the reason holds control characters");
    }
    Ok(reason.to_owned())
}

/// The store's refusals in words naming the flag.
fn explain(error: WebhookStoreError) -> anyhow::Error {
    match error {
        WebhookStoreError::InvalidUrl(why) => anyhow!("--url: {why}"),
        WebhookStoreError::InvalidEventTypes(why) => anyhow!("--event: {why}"),
        WebhookStoreError::UnknownEventTypes(names) => anyhow!(
            "--event: unknown event types: {}; the types are: {}",
            names.join(", "),
            domain::webhook_events::CATALOGUE
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        WebhookStoreError::OverlapTooLong => anyhow!("--overlap: at most 7d"),
        other => anyhow::Error::new(other),
    }
}

/// The endpoint `id` of the marketplace, or which flag is wrong.
async fn find(conn: &mut PgConnection, marketplace: Uuid, id: Uuid) -> anyhow::Result<Endpoint> {
    wstore::get_endpoint(conn, marketplace, id)
        .await
        .map_err(explain)?
        .ok_or_else(|| {
            anyhow!(
                "ENDPOINT: no webhook endpoint {id} in marketplace {marketplace} \
                 (`vendorflow webhooks list` shows them)"
            )
        })
}

/// One audit entry of the command line about an endpoint.
struct Entry<'a> {
    marketplace: Uuid,
    endpoint: Uuid,
    actor: &'a str,
    action: &'static str,
    reason: &'a str,
    data: Option<Value>,
}

async fn audit(
    conn: &mut PgConnection,
    entry: &Entry<'_>,
    result: &str,
    detail: &str,
) -> anyhow::Result<()> {
    store::admin::append_audit(
        conn,
        &store::admin::NewAuditEntry {
            marketplace_id: entry.marketplace,
            token_id: None,
            actor: Some(entry.actor),
            role: "operator",
            channel: "cli",
            action: entry.action,
            target_kind: "endpoint",
            target_id: Some(entry.endpoint),
            reason: Some(entry.reason),
            result,
            detail: Some(detail),
            data: entry.data.clone(),
        },
    )
    .await?;
    Ok(())
}

/// Does `change` on one transaction with its audit entry; a refusal (`Err` from `change`) is
/// rolled back and audited as refused.
async fn audited(
    conn: &mut PgConnection,
    entry: Entry<'_>,
    change: impl AsyncFnOnce(&mut PgConnection) -> anyhow::Result<Result<String, String>>,
) -> anyhow::Result<String> {
    let mut tx = conn.begin().await?;
    match change(&mut tx).await? {
        Ok(detail) => {
            audit(&mut tx, &entry, "ok", &detail).await?;
            tx.commit().await?;
            Ok(detail)
        }
        Err(refusal) => {
            tx.rollback().await?;
            audit(conn, &entry, "refused", &refusal).await?;
            Err(anyhow!(refusal))
        }
    }
}

fn filter_text(types: &Option<Vec<String>>) -> String {
    match types {
        None => "every event type".to_owned(),
        Some(types) => types.join(", "),
    }
}

fn endpoint_json(e: &Endpoint) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "event_types": e.event_types,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "disabled_at": e.disabled_at,
        "created_at": e.created_at,
        "secret_rotated_at": e.secret_rotated_at,
        "previous_secret_expires_at": e.previous_secret_expires_at,
    })
}

/// Runs one `webhooks` command. `keyring` is there when [`WebhookCommands::needs_master_key`];
/// `actor` names who acts; `development` says the database is `make run`'s.
pub async fn run(
    command: WebhookCommands,
    conn: &mut PgConnection,
    keyring: Option<&Keyring>,
    actor: impl Fn(Option<&str>) -> engine::Actor,
    development: bool,
) -> anyhow::Result<()> {
    match command {
        WebhookCommands::Create {
            url,
            events,
            change,
        } => {
            let why = reason(&change)?;
            let keyring = keyring.context("the master key is needed to store the secret")?;
            let marketplace = super::marketplace(conn, change.marketplace, development).await?;
            let who = actor(change.actor.as_deref());
            let events = (!events.is_empty()).then_some(events);
            let mut tx = conn.begin().await?;
            let created =
                wstore::create_endpoint(&mut tx, keyring, marketplace, &url, events.as_deref())
                    .await
                    .map_err(explain)?;
            let detail = format!("endpoint created, receiving {}", filter_text(&events));
            audit(
                &mut tx,
                &Entry {
                    marketplace,
                    endpoint: created.id,
                    actor: &who.id,
                    action: "create_endpoint",
                    reason: &why,
                    data: Some(json!({ "event_types": events })),
                },
                "ok",
                &detail,
            )
            .await?;
            tx.commit().await?;
            eprintln!(
                "endpoint {} receiving {} (keep the secret below; it is shown once)",
                created.id,
                filter_text(&events)
            );
            println!("{}", created.secret.expose_secret());
        }
        WebhookCommands::List { marketplace, json } => {
            let marketplace = super::marketplace(conn, marketplace, development).await?;
            let endpoints = wstore::list_endpoints(conn, marketplace)
                .await
                .map_err(explain)?;
            let backlog = store::admin::delivery_backlog(conn, marketplace).await?;
            let counts = |id: Uuid| {
                backlog
                    .iter()
                    .find(|(e, _, _)| *e == id)
                    .map(|(_, pending, dead)| (*pending, *dead))
                    .unwrap_or((0, 0))
            };
            if json {
                let list: Vec<Value> = endpoints
                    .iter()
                    .map(|e| {
                        let mut value = endpoint_json(e);
                        let (pending, dead) = counts(e.id);
                        value["pending"] = json!(pending);
                        value["dead"] = json!(dead);
                        value
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if endpoints.is_empty() {
                println!("no webhook endpoints (`vendorflow webhooks create` adds one)");
            } else {
                let mut table = Table::new(&["id", "state", "events", "pending", "dead", "url"]);
                for e in &endpoints {
                    let (pending, dead) = counts(e.id);
                    let state = match (e.enabled, e.previous_secret_expires_at) {
                        (false, _) => "disabled",
                        (true, Some(_)) => "enabled (rotating)",
                        (true, None) => "enabled",
                    };
                    table.row(vec![
                        e.id.to_string(),
                        state.to_owned(),
                        e.event_types
                            .as_ref()
                            .map_or_else(|| "all".to_owned(), |t| t.join(",")),
                        pending.to_string(),
                        dead.to_string(),
                        e.url.clone(),
                    ]);
                }
                print!("{}", table.render());
            }
        }
        WebhookCommands::Show {
            endpoint,
            marketplace,
            json,
        } => {
            let marketplace = super::marketplace(conn, marketplace, development).await?;
            let e = find(conn, marketplace, endpoint).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&endpoint_json(&e))?);
            } else {
                println!("endpoint {}", e.id);
                println!("  url:      {}", e.url);
                println!("  events:   {}", filter_text(&e.event_types));
                match (&e.enabled, &e.disabled_reason) {
                    (true, _) => println!("  state:    enabled"),
                    (false, reason) => println!(
                        "  state:    disabled ({})",
                        reason.as_deref().unwrap_or("no reason")
                    ),
                }
                if let Some(until) = e.previous_secret_expires_at {
                    println!(
                        "  secret:   rotated; the old secret signs too until {}",
                        until.to_rfc3339()
                    );
                } else if let Some(at) = e.secret_rotated_at {
                    println!("  secret:   rotated at {}", at.to_rfc3339());
                }
                println!("  created:  {}", e.created_at.to_rfc3339());
            }
        }
        WebhookCommands::SetEvents {
            endpoint,
            events,
            all,
            change,
        } => {
            let why = reason(&change)?;
            let marketplace = super::marketplace(conn, change.marketplace, development).await?;
            find(conn, marketplace, endpoint).await?;
            let who = actor(change.actor.as_deref());
            let events = (!all).then_some(events);
            let entry = Entry {
                marketplace,
                endpoint,
                actor: &who.id,
                action: "update_endpoint",
                reason: &why,
                data: Some(json!({ "event_types": events })),
            };
            let said = audited(conn, entry, async |tx| {
                wstore::set_event_types(tx, marketplace, endpoint, events.as_deref())
                    .await
                    .map_err(explain)?;
                Ok(Ok(format!(
                    "endpoint {endpoint} now receives {}",
                    filter_text(&events)
                )))
            })
            .await?;
            println!("{said}");
        }
        WebhookCommands::Disable { endpoint, change } => {
            set_enabled(conn, endpoint, change, false, &actor, development).await?;
        }
        WebhookCommands::Enable { endpoint, change } => {
            set_enabled(conn, endpoint, change, true, &actor, development).await?;
        }
        WebhookCommands::Delete { endpoint, change } => {
            let why = reason(&change)?;
            let marketplace = super::marketplace(conn, change.marketplace, development).await?;
            find(conn, marketplace, endpoint).await?;
            let who = actor(change.actor.as_deref());
            let entry = Entry {
                marketplace,
                endpoint,
                actor: &who.id,
                action: "delete_endpoint",
                reason: &why,
                data: None,
            };
            let said = audited(conn, entry, async |tx| {
                Ok(
                    match wstore::delete_endpoint(tx, marketplace, endpoint)
                        .await
                        .map_err(explain)?
                    {
                        Some(gone) => Ok(format!(
                            "endpoint {endpoint} deleted with its {} deliveries; {} pending \
                             ones will never be sent",
                            gone.deliveries, gone.pending
                        )),
                        None => Err(format!("no webhook endpoint {endpoint}")),
                    },
                )
            })
            .await?;
            println!("{said}");
        }
        WebhookCommands::RotateSecret {
            endpoint,
            overlap,
            change,
        } => {
            let why = reason(&change)?;
            let overlap: Duration = crate::settings::parse_duration(&overlap)
                .context("--overlap: a duration such as 24h, 30m or 0s")?;
            if overlap > wstore::MAX_OVERLAP {
                return Err(explain(WebhookStoreError::OverlapTooLong));
            }
            let keyring = keyring.context("the master key is needed to store the secret")?;
            let marketplace = super::marketplace(conn, change.marketplace, development).await?;
            find(conn, marketplace, endpoint).await?;
            let who = actor(change.actor.as_deref());
            let entry = Entry {
                marketplace,
                endpoint,
                actor: &who.id,
                action: "rotate_endpoint_secret",
                reason: &why,
                data: Some(json!({ "overlap_seconds": overlap.as_secs() })),
            };
            let mut secret = None;
            let said = audited(conn, entry, async |tx| {
                Ok(
                    match wstore::rotate_secret(tx, keyring, marketplace, endpoint, overlap)
                        .await
                        .map_err(explain)?
                    {
                        Some(rotated) => {
                            let said = match rotated.previous_expires_at {
                                Some(until) => format!(
                                    "endpoint {endpoint}: secret rotated; the old secret signs \
                                     too until {} (keep the new secret below; it is shown once)",
                                    until.to_rfc3339()
                                ),
                                None => format!(
                                    "endpoint {endpoint}: secret rotated; only the new secret \
                                     signs from now on (keep it; it is shown once)"
                                ),
                            };
                            secret = Some(rotated.secret);
                            Ok(said)
                        }
                        None => Err(format!("no webhook endpoint {endpoint}")),
                    },
                )
            })
            .await?;
            eprintln!("{said}");
            if let Some(secret) = secret {
                println!("{}", secret.expose_secret());
            }
        }
    }
    Ok(())
}

async fn set_enabled(
    conn: &mut PgConnection,
    endpoint: Uuid,
    change: ChangeArgs,
    enabled: bool,
    actor: &impl Fn(Option<&str>) -> engine::Actor,
    development: bool,
) -> anyhow::Result<()> {
    let why = reason(&change)?;
    let marketplace = super::marketplace(conn, change.marketplace, development).await?;
    find(conn, marketplace, endpoint).await?;
    let who = actor(change.actor.as_deref());
    let entry = Entry {
        marketplace,
        endpoint,
        actor: &who.id,
        action: if enabled {
            "enable_endpoint"
        } else {
            "disable_endpoint"
        },
        reason: &why,
        data: None,
    };
    let said = audited(conn, entry, async |tx| {
        let before = find(tx, marketplace, endpoint).await?;
        if before.enabled == enabled {
            return Ok(Err(format!(
                "endpoint {endpoint} is already {}",
                if enabled { "enabled" } else { "disabled" }
            )));
        }
        wstore::set_endpoint_enabled(tx, marketplace, endpoint, enabled, &why)
            .await
            .map_err(explain)?;
        Ok(Ok(if enabled {
            format!("endpoint {endpoint} enabled: new events are delivered to it")
        } else {
            format!(
                "endpoint {endpoint} disabled: no new deliveries; its pending deliveries become \
                 dead letters (replay them after enabling it)"
            )
        }))
    })
    .await?;
    println!("{said}");
    Ok(())
}
