//! The shared harness of the api crate's tests: the whole HTTP application on 127.0.0.1:0 against
//! the test's own database, two marketplaces with a token of every role, and the few HTTP and SQL
//! helpers every test file needs. Each test file brings its own workflow definitions, since what
//! the runs do is what differs between them; `admin` adds runs driven by a real engine worker.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

pub mod admin;
pub mod browser;

use std::sync::Arc;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;
use store::secrets::{Keyring, MasterKey};
use store::tokens::Role;
use uuid::Uuid;

/// Tokens of one marketplace.
pub struct Market {
    pub id: Uuid,
    pub operator: String,
    pub viewer: String,
    pub backend: String,
}

/// A keyring with one fresh master key, as a test's application uses.
pub fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::single(MasterKey::generate()))
}

/// Definitions of test workflows whose steps only wait for `signal`, given as (file name, TOML).
pub fn waiting_definitions(sources: &[(&str, &str)], signal: &str) -> Arc<engine::Definitions> {
    let mut registry = engine::Registry::new();
    registry.signal(signal);
    Arc::new(engine::Definitions::from_sources(sources.iter().copied(), &registry).unwrap())
}

/// Serves `router` on a free port of 127.0.0.1 and answers its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// A new API token of `market` with `role`, in clear, named after a person for people's roles
/// (`dana` the operator, `noa` the viewer) and `shop backend` for the backend.
pub async fn token(pool: &PgPool, market: Uuid, role: Role) -> String {
    let mut conn = pool.acquire().await.unwrap();
    let name = match role {
        Role::Operator => "dana",
        Role::Viewer => "noa",
        Role::Backend => "shop backend",
    };
    store::tokens::create(&mut conn, market, role, name)
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

/// A new marketplace called `name` with a token of every role.
pub async fn market(pool: &PgPool, name: &str) -> Market {
    let mut conn = pool.acquire().await.unwrap();
    let id = store::marketplaces::insert(&mut conn, name)
        .await
        .unwrap()
        .id;
    drop(conn);
    Market {
        id,
        operator: token(pool, id, Role::Operator).await,
        viewer: token(pool, id, Role::Viewer).await,
        backend: token(pool, id, Role::Backend).await,
    }
}

/// A clearing vendor of `market` whose bank account was checked, stored directly.
pub async fn insert_vendor(
    pool: &PgPool,
    market: Uuid,
    external_id: &str,
    legal_name: &str,
    corporate_number: String,
    email: String,
) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    store::vendors::insert(
        &mut conn,
        &store::vendors::NewVendor {
            marketplace_id: market,
            external_id: external_id.to_owned(),
            legal_name: legal_name.to_owned(),
            corporate_number,
            business_type: "company".to_owned(),
            email,
            phone_e164: "+972521234567".to_owned(),
            mode: "clearing".to_owned(),
            bank_account_checked: Some(true),
            bank_account_last4: Some("1116".to_owned()),
        },
    )
    .await
    .unwrap()
    .id
}

/// The running application, its database and two marketplaces, A and B.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub a: Market,
    pub b: Market,
}

impl Api {
    /// Starts the application (API, admin API and dashboard) over `definitions` and creates the
    /// two marketplaces.
    pub async fn start(
        pool: PgPool,
        definitions: Arc<engine::Definitions>,
        keyring: Arc<Keyring>,
    ) -> Api {
        let state = api::AppState {
            pool: pool.clone(),
            definitions,
            keyring,
            metrics: None,
            max_amount_agorot: domain::orders::DEFAULT_MAX_AMOUNT_AGOROT,
        };
        let base = serve(api::router(state)).await;
        Api {
            base,
            client: reqwest::Client::new(),
            a: market(&pool, "Marketplace A").await,
            b: market(&pool, "Marketplace B").await,
            pool,
        }
    }

    /// POSTs `body` as JSON with `token`, and an `Idempotency-Key` when `key` is given.
    pub async fn post_full(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// As `post_full`, answering the status and the JSON body (`Null` when there is none).
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self.post_full(path, token, key, body).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path` with `token`, answering the status and the JSON body (`Null` when there is
    /// none).
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The OpenAPI document the application serves.
    pub async fn openapi(&self) -> Value {
        reqwest::get(format!("{}/openapi.json", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many rows `vendorflow.{table}` has.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM vendorflow.{table}"
        )))
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}
