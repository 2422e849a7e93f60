//! The workflow files load against the registered steps, as the binary loads them.

use std::sync::Arc;

use engine::{Definitions, Registry, Worker, WorkerConfig};
use providers::sumit::{ClientConfig, Credentials, SumitClient};
use store::secrets::{Keyring, MasterKey};

fn registry(sandbox_extensions: bool) -> Registry {
    let config = Arc::new(steps::StepsConfig {
        provider: SumitClient::new("http://127.0.0.1:9", ClientConfig::default()).unwrap(),
        marketplace_credentials: Credentials::new(1000, "marketplace-key"),
        keyring: Arc::new(Keyring::single(MasterKey::generate())),
        sandbox_extensions,
    });
    let mut registry = Registry::new();
    steps::register(&mut registry, config);
    registry
}

#[test]
fn the_workflow_directory_loads_against_the_registered_steps() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    let definitions =
        Definitions::load_dir(dir, &registry(false)).unwrap_or_else(|e| panic!("{e}"));
    for name in [
        steps::ONBOARDING_WORKFLOW,
        steps::CHARGE_WORKFLOW,
        steps::DOCUMENT_WORKFLOW,
    ] {
        let workflow = definitions
            .get(name)
            .unwrap_or_else(|| panic!("{name} is loaded"));
        // The charge's and document's first steps carry the names the onboarding signals.
        if name != steps::ONBOARDING_WORKFLOW {
            let steps: Vec<&str> = workflow
                .definition
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            assert_eq!(
                &steps[..2],
                [steps::CHECK_VENDOR_STEP, steps::AWAIT_VENDOR_STEP]
            );
        }
    }
    assert!(
        definitions
            .get(steps::CHARGE_WORKFLOW)
            .unwrap()
            .definition
            .declares_outcome("declined")
    );
}

#[tokio::test]
async fn a_worker_with_the_default_lease_accepts_every_step_timeout() {
    let registry = registry(true);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    let definitions = Definitions::load_dir(dir, &registry).unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:9/none")
        .unwrap();
    Worker::new(
        pool,
        Arc::new(registry),
        Arc::new(definitions),
        WorkerConfig::default(),
    )
    .unwrap();
}
