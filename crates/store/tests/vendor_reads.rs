//! The reads a marketplace backend needs, against a real database: a vendor with its latest
//! onboarding run, the state filter (its SQL mirror of `domain::vendor_state` agrees with the
//! domain on every combination), keyset paging of vendors and of a vendor's orders, and the
//! indexes the listings' plans use.

use domain::run::RunStatus;
use domain::vendor_state::{
    ONBOARDING_WORKFLOW, OnboardingRunFacts, TERMINAL_APPROVAL_STEP, VendorFacts, vendor_state,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use store::run_queries::RunCursor;
use store::runs::{DefinitionSource, NewRunRow};
use store::vendors::VendorFilter;
use uuid::Uuid;

fn definition(workflow: &str) -> DefinitionSource<'_> {
    DefinitionSource {
        workflow,
        version: 1,
        content_hash: "0000000000000000000000000000000000000000000000000000000000000000",
        file_name: "w.toml",
        source: "name = \"w\"\nversion = 1\n",
    }
}

async fn vendor(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    external_id: &str,
    mode: &str,
) -> Uuid {
    let clearing = mode == "clearing";
    store::vendors::insert(
        conn,
        &store::vendors::NewVendor {
            marketplace_id,
            external_id: external_id.to_owned(),
            legal_name: "Dana Ceramics Ltd".to_owned(),
            corporate_number: "515555555".to_owned(),
            business_type: "company".to_owned(),
            email: "dana@example.co.il".to_owned(),
            phone_e164: "+972521234567".to_owned(),
            mode: mode.to_owned(),
            bank_account_checked: clearing.then_some(true),
            bank_account_last4: clearing.then(|| "1116".to_owned()),
        },
    )
    .await
    .unwrap()
    .id
}

async fn run(
    conn: &mut PgConnection,
    workflow: &str,
    marketplace_id: Uuid,
    subject_id: Uuid,
    order_key: Option<&str>,
) -> Uuid {
    let id = Uuid::now_v7();
    store::runs::insert_runs(
        conn,
        &definition(workflow),
        "first",
        &[NewRunRow {
            id,
            marketplace_id: Some(marketplace_id),
            subject_id: Some(subject_id),
            input: json!({}),
            delay_ms: 0,
            order_key: order_key.map(str::to_owned),
        }],
        "system",
        "test",
    )
    .await
    .unwrap();
    id
}

/// Puts a run in `status` at `step`, with what the table's constraints ask of that status.
async fn set_run(conn: &mut PgConnection, id: Uuid, status: RunStatus, step: &str, reason: &str) {
    sqlx::query(
        "UPDATE vendorflow.runs SET status = $2, step_name = $3, status_reason = $4,
             outcome = CASE WHEN $2 = 'succeeded' THEN 'completed' END,
             finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() END,
             lease_owner = CASE WHEN $2 = 'running' THEN 'w' END,
             lease_expires_at = CASE WHEN $2 = 'running' THEN now() + interval '1 minute' END,
             next_run_at = CASE WHEN $2 = 'pending' THEN now() END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(step)
    .bind(reason)
    .execute(conn)
    .await
    .unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_state_filter_agrees_with_the_domain_on_every_combination(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let market = store::marketplaces::insert(&mut conn, "States")
        .await
        .unwrap()
        .id;
    let mut cases = Vec::new();
    for onboarding_state in ["pending", "onboarding", "ready"] {
        let mut runs: Vec<Option<(RunStatus, &str)>> = vec![None];
        for status in RunStatus::ALL {
            for step in ["create_organization", TERMINAL_APPROVAL_STEP] {
                runs.push(Some((*status, step)));
            }
        }
        for facts in runs {
            let external_id = format!("v-{}", cases.len());
            let id = vendor(&mut conn, market, &external_id, "clearing").await;
            if onboarding_state != "pending" {
                store::vendors::set_onboarding_state(&mut conn, id, onboarding_state)
                    .await
                    .unwrap();
            }
            if let Some((status, step)) = facts {
                // An older run is not the one the state follows.
                let old = run(&mut conn, ONBOARDING_WORKFLOW, market, id, None).await;
                set_run(&mut conn, old, RunStatus::Failed, step, "old").await;
                let latest = run(&mut conn, ONBOARDING_WORKFLOW, market, id, None).await;
                set_run(&mut conn, latest, status, step, "why").await;
            }
            let expected = vendor_state(&VendorFacts {
                onboarding_state,
                run: facts.map(|(status, step)| OnboardingRunFacts {
                    status,
                    step,
                    status_reason: Some("why"),
                }),
            })
            .0;
            cases.push((id, external_id, expected));
        }
    }
    for (id, external_id, expected) in cases {
        let read = store::vendors::find_read(&mut conn, market, id)
            .await
            .unwrap()
            .unwrap();
        let facts = VendorFacts {
            onboarding_state: &read.vendor.onboarding_state,
            run: read.run_status.as_deref().map(|status| OnboardingRunFacts {
                status: status.parse().unwrap(),
                step: read.run_step.as_deref().unwrap(),
                status_reason: read.run_status_reason.as_deref(),
            }),
        };
        assert_eq!(vendor_state(&facts).0, expected, "{external_id}");
        for state in domain::vendor_state::VendorState::ALL {
            let filter = VendorFilter {
                external_id: Some(external_id.clone()),
                state: Some(state.as_str().to_owned()),
                ..Default::default()
            };
            let found = store::vendors::list_reads(&mut conn, market, &filter, None, 10)
                .await
                .unwrap();
            assert_eq!(
                found.len(),
                usize::from(*state == expected),
                "{external_id} {state}"
            );
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn vendors_and_orders_page_by_keyset_within_their_marketplace(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let market = store::marketplaces::insert(&mut conn, "Paging")
        .await
        .unwrap()
        .id;
    let other = store::marketplaces::insert(&mut conn, "Other")
        .await
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mode = if n % 2 == 0 {
            "clearing"
        } else {
            "documents_only"
        };
        ids.push(vendor(&mut conn, market, &format!("v-{n}"), mode).await);
    }
    vendor(&mut conn, other, "v-0", "clearing").await;

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            store::vendors::list_reads(&mut conn, market, &VendorFilter::default(), cursor, 2)
                .await
                .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|last| RunCursor {
            created_at: last.vendor.created_at,
            id: last.vendor.id,
        });
        seen.extend(page.into_iter().map(|read| read.vendor.id));
    }
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);

    let documents_only = VendorFilter {
        mode: Some("documents_only".to_owned()),
        ..Default::default()
    };
    let found = store::vendors::list_reads(&mut conn, market, &documents_only, None, 10)
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|r| r.vendor.id).collect::<Vec<_>>(),
        vec![ids[3], ids[1]]
    );

    let by_external = VendorFilter {
        external_id: Some("v-2".to_owned()),
        ..Default::default()
    };
    let found = store::vendors::list_reads(&mut conn, other, &by_external, None, 10)
        .await
        .unwrap();
    assert!(
        found.is_empty(),
        "another marketplace's vendor is not found"
    );

    let dana = ids[0];
    let mut orders = Vec::new();
    for n in 0..3 {
        orders.push(
            run(
                &mut conn,
                "vendor_charge",
                market,
                dana,
                Some(&format!("order-{n}")),
            )
            .await,
        );
    }
    run(&mut conn, "vendor_document", market, dana, Some("order-0")).await;
    let first = store::run_queries::list_orders(&mut conn, market, dana, "vendor_charge", None, 2)
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|o| o.order_key.as_str())
            .collect::<Vec<_>>(),
        ["order-2", "order-1"]
    );
    let cursor = RunCursor {
        created_at: first[1].run.created_at,
        id: first[1].run.id,
    };
    let rest =
        store::run_queries::list_orders(&mut conn, market, dana, "vendor_charge", Some(cursor), 2)
            .await
            .unwrap();
    assert_eq!(
        rest.iter().map(|o| o.run.id).collect::<Vec<_>>(),
        [orders[0]]
    );
    let found = store::run_queries::find_order(&mut conn, market, dana, "vendor_charge", "order-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.run.id, orders[1]);
    let elsewhere =
        store::run_queries::find_order(&mut conn, other, dana, "vendor_charge", "order-1")
            .await
            .unwrap();
    assert!(elsewhere.is_none());
}

/// The plan of `sql` with sequential scans discouraged: an index that can serve it shows.
async fn plan(conn: &mut PgConnection, sql: &str) -> String {
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.join("\n")
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_listings_are_served_by_indexes(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let vendors = plan(
        &mut conn,
        "SELECT v.id FROM vendorflow.vendors v
         WHERE v.marketplace_id = '00000000-0000-0000-0000-000000000001'
           AND (v.created_at, v.id) < (now(), '00000000-0000-0000-0000-000000000001')
         ORDER BY v.created_at DESC, v.id DESC LIMIT 21",
    )
    .await;
    assert!(vendors.contains("vendors_marketplace_created"), "{vendors}");
    let orders = plan(
        &mut conn,
        "SELECT r.id FROM vendorflow.runs r
         WHERE r.subject_id = '00000000-0000-0000-0000-000000000001'
           AND r.marketplace_id = '00000000-0000-0000-0000-000000000002'
           AND r.workflow = 'vendor_charge' AND r.order_key IS NOT NULL
         ORDER BY r.created_at DESC, r.id DESC LIMIT 21",
    )
    .await;
    assert!(orders.contains("runs_subject"), "{orders}");
    let latest_onboarding = plan(
        &mut conn,
        "SELECT r.id FROM vendorflow.runs r
         WHERE r.subject_id = '00000000-0000-0000-0000-000000000001' AND r.workflow = 'vendor_onboarding'
         ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
    )
    .await;
    assert!(
        latest_onboarding.contains("runs_subject"),
        "{latest_onboarding}"
    );
}
