//! Definitions are validated at start-up; every error names the file, the step and the problem.

use std::sync::Arc;

use engine::{Definitions, Registry};

use crate::support::{Ledger, THREE_STEPS, registry};

fn errors_of(registry: &Registry, file: &str, source: &str) -> String {
    Definitions::from_sources([(file, source)], registry)
        .expect_err("the definition is invalid")
        .to_string()
}

#[test]
fn a_definition_with_an_unknown_handler_is_rejected_naming_file_step_and_handler() {
    let registry = registry(&Arc::new(Ledger::default()));
    let source = THREE_STEPS.replace("action = \"second\"", "action = \"secnod\"");
    let message = errors_of(&registry, "workflows/three.toml", &source);
    assert!(
        message.contains("workflows/three.toml:15: step `two`: unknown handler `secnod` (registered: first, second, third)"),
        "{message}"
    );
}

#[test]
fn a_definition_with_a_duplicate_step_is_rejected_naming_it() {
    let registry = registry(&Arc::new(Ledger::default()));
    let source = THREE_STEPS.replace("name = \"three\"\naction", "name = \"two\"\naction");
    let message = errors_of(&registry, "three.toml", &source);
    assert!(
        message
            .contains("three.toml:18: step `two`: duplicate step name (first defined at line 14)"),
        "{message}"
    );
}

#[test]
fn a_definition_with_a_bad_duration_is_rejected_naming_the_field_and_value() {
    let registry = registry(&Arc::new(Ledger::default()));
    let source = THREE_STEPS.replace(
        "action = \"first\"",
        "action = \"first\"\ntimeout = \"30 secs\"",
    );
    let message = errors_of(&registry, "three.toml", &source);
    assert!(
        message.contains("three.toml:12: step `one`: `timeout`: invalid duration `30 secs`"),
        "{message}"
    );
}

#[test]
fn an_unknown_signal_or_condition_is_a_start_up_error() {
    let registry = registry(&Arc::new(Ledger::default()));
    let source = r#"
name = "w"
version = 1
[[steps]]
name = "a"
action = "first"
when = "vip"
[[steps]]
name = "b"
wait = "terminal_approved"
"#;
    let message = errors_of(&registry, "w.toml", source);
    assert!(
        message.contains("w.toml:7: step `a`: unknown condition `vip` (registered: clearing)"),
        "{message}"
    );
    assert!(
        message.contains(
            "w.toml:10: step `b`: unknown signal `terminal_approved` (registered: approved)"
        ),
        "{message}"
    );
}

#[test]
fn load_dir_reads_every_toml_file_and_names_the_bad_one_by_path() {
    let dir = std::env::temp_dir().join(format!("vendorflow-defs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("three.toml"), THREE_STEPS).unwrap();
    std::fs::write(dir.join("README.md"), "not a definition").unwrap();
    let registry = registry(&Arc::new(Ledger::default()));
    let loaded = Definitions::load_dir(&dir, &registry).unwrap();
    assert!(loaded.get("three").is_some());

    std::fs::write(
        dir.join("broken.toml"),
        "name = \"broken\"\nversion = 1\n[[steps]]\nname = \"x\"\naction = \"nope\"\n",
    )
    .unwrap();
    let message = Definitions::load_dir(&dir, &registry)
        .unwrap_err()
        .to_string();
    let path = dir.join("broken.toml").display().to_string();
    assert!(
        message.contains(&format!("{path}:5: step `x`: unknown handler `nope`")),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_files_defining_the_same_workflow_are_rejected() {
    let registry = registry(&Arc::new(Ledger::default()));
    let message = Definitions::from_sources(
        [("a.toml", THREE_STEPS), ("b.toml", THREE_STEPS)],
        &registry,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("b.toml: workflow `three` is already defined in a.toml"),
        "{message}"
    );
}
