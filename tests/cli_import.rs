//! End-to-end tests of `vendorflow vendors import` against a fresh database: rows are validated
//! with the API's parser, valid rows are enqueued as the API enqueues them, rejected rows are
//! reported by row, column and reason, and importing a file again enqueues nothing new.

use std::path::PathBuf;
use std::process::{Command, Output};

use secrecy::ExposeSecret;
use serde_json::Value;
use testkit::TestDatabase;
use uuid::Uuid;

const HEADER: &str =
    "external_id,legal_name,corporate_number,business_type,email,phone,mode,bank,branch,account";

/// Rows 2–4 are valid (a Hebrew name with a quoted quote, a documents-only vendor, a clearing
/// vendor with its account as a number); rows 5–7 are not.
const MIXED_ROWS: &str = "\
s-1,\"דנה קרמיקה בע\"\"מ\",515555555,company,dana@example.co.il,052-123-4567,clearing,12,571,041116
s-2,Avi Print,12-345678-2,licensed_dealer,avi@example.co.il,03-1234567,documents_only,,,
s-3,\"Noa Yoga, Studio\",000000018,exempt_dealer,noa@example.co.il,+972 54 765 4321,clearing,12,571,41116
s-4,Bad Digits,515555556,company,not-an-email,052-123-4567,clearing,12,571,041117
s-5,No Bank,515555555,company,x@example.co.il,052-123-4567,clearing,,,
s-6,Short Row,515555555
";

struct Setup {
    db: TestDatabase,
    marketplace: Uuid,
    master_key: String,
    dir: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let db = TestDatabase::create().await;
        let mut conn = db.pool.acquire().await.unwrap();
        let marketplace = store::marketplaces::insert(&mut conn, "Shuk")
            .await
            .unwrap()
            .id;
        let dir = std::env::temp_dir().join(format!("vendorflow-import-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Setup {
            db,
            marketplace,
            master_key: store::secrets::MasterKey::generate()
                .to_base64()
                .expose_secret()
                .to_owned(),
            dir,
        }
    }

    fn file(&self, name: &str, rows: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{HEADER}\n{rows}")).unwrap();
        path.display().to_string()
    }

    /// Runs the binary with the database, the master key and the definitions, and no provider
    /// settings: an import only enqueues, so it must not need them.
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[("VENDORFLOW_MASTER_KEY", &self.master_key)])
    }

    fn cli_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vendorflow"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("VENDORFLOW_LOG", "warn")
            .env(
                "VENDORFLOW_WORKFLOWS_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
            );
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().expect("run vendorflow")
    }

    fn import(&self, file: &str, more: &[&str]) -> Output {
        let marketplace = self.marketplace.to_string();
        let mut args = vec!["vendors", "import", file, "--marketplace", &marketplace];
        args.extend_from_slice(more);
        self.cli(&args)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

#[tokio::test]
async fn good_rows_are_enqueued_bad_rows_are_reported_and_a_second_import_enqueues_nothing() {
    let setup = Setup::new().await;
    let file = setup.file("vendors.csv", MIXED_ROWS);

    let first = setup.import(&file, &[]);
    assert_eq!(first.status.code(), Some(2), "{}", describe(&first));
    let report = stdout(&first);
    for expected in [
        "6 row(s)",
        "rejected rows (3)",
        "corporate_number",
        "The check digit of this number is wrong",
        "(check_digit_failed)",
        "email",
        "(invalid_email)",
        "account",
        "(bank_check_failed)",
        "bank, branch, account",
        "This field is required. (required)",
        "The row has 3 fields; the header has 10.",
        "enqueued 3, already enqueued 0, rejected 3",
    ] {
        assert!(report.contains(expected), "`{expected}` missing:\n{report}");
    }
    // Each rejected row is named by its spreadsheet row number (the header is row 1).
    for (row, id) in [("5", "s-4"), ("6", "s-5"), ("7", "s-6")] {
        assert!(
            report.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.first() == Some(&row) && cells.get(1) == Some(&id)
            }),
            "row {row} ({id}) is not reported:\n{report}"
        );
    }

    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.vendors").await,
        3
    );
    assert_eq!(
        setup
            .count(
                "SELECT count(*) FROM vendorflow.runs
                 WHERE workflow = 'vendor_onboarding' AND status = 'pending'"
            )
            .await,
        3
    );
    // Two clearing vendors: two bank accounts, stored encrypted and nowhere in the clear.
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.secrets").await,
        2
    );
    assert_eq!(
        setup
            .count(
                "SELECT (SELECT count(*) FROM vendorflow.vendors v WHERE v::text LIKE '%41116%')
                      + (SELECT count(*) FROM vendorflow.runs r WHERE r::text LIKE '%41116%')
                      + (SELECT count(*) FROM vendorflow.run_history h WHERE h::text LIKE '%41116%')
                      + (SELECT count(*) FROM vendorflow.secrets s WHERE s::text LIKE '%41116%')"
            )
            .await,
        0
    );
    // The run's input is the application as the API stores it, with the vendor's id.
    let (input, marketplace): (Value, Uuid) = sqlx::query_as(
        "SELECT r.input, r.marketplace_id FROM vendorflow.runs r
         JOIN vendorflow.vendors v ON v.id = r.subject_id WHERE v.external_id = 's-1'",
    )
    .fetch_one(&setup.db.pool)
    .await
    .unwrap();
    assert_eq!(marketplace, setup.marketplace);
    assert_eq!(input["legal_name"], "דנה קרמיקה בע\"מ");
    assert_eq!(input["phone"], "+972521234567");
    assert_eq!(input["bank_account"]["last4"], "1116");
    assert!(input["vendor_id"].is_string(), "{input}");

    let again = setup.import(&file, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    assert!(
        stdout(&again).contains("enqueued 0, already enqueued 3, rejected 3"),
        "{}",
        describe(&again)
    );
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.vendors").await,
        3
    );
    assert_eq!(setup.count("SELECT count(*) FROM vendorflow.runs").await, 3);
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.secrets").await,
        2
    );
}

#[tokio::test]
async fn a_clean_file_exits_zero_and_its_json_report_names_each_run() {
    let setup = Setup::new().await;
    let rows = "\
c-1,Avi Print,000000018,licensed_dealer,avi@example.co.il,03-1234567,documents_only,,,
c-2,\"דנה קרמיקה בע\"\"מ\",515555555,company,dana@example.co.il,052-123-4567,clearing,12,571,041116
";
    let file = setup.file("clean.csv", rows);
    let imported = setup.import(&file, &["--json"]);
    assert_eq!(imported.status.code(), Some(0), "{}", describe(&imported));
    let report: Value = serde_json::from_str(&stdout(&imported)).unwrap();
    assert_eq!(report["rows"], 2);
    assert_eq!(report["rejected"].as_array().unwrap().len(), 0);
    let enqueued = report["enqueued"].as_array().unwrap();
    assert_eq!(enqueued.len(), 2, "{report}");
    assert_eq!(enqueued[1]["row"], 3);
    assert_eq!(enqueued[1]["external_id"], "c-2");
    let run_id: Uuid = enqueued[1]["run_id"].as_str().unwrap().parse().unwrap();
    let (subject, actor): (Option<Uuid>, String) = sqlx::query_as(
        "SELECT r.subject_id, h.actor_kind || ':' || h.actor_id FROM vendorflow.runs r
         JOIN vendorflow.run_history h ON h.run_id = r.id AND h.kind = 'created'
         WHERE r.id = $1",
    )
    .bind(run_id)
    .fetch_one(&setup.db.pool)
    .await
    .unwrap();
    assert_eq!(subject.unwrap().to_string(), enqueued[1]["vendor_id"]);
    assert_eq!(actor, "operator:cli");

    // Again, with one vendor's e-mail changed: nothing is enqueued or changed, and the report
    // says which stored vendor differs from its row.
    let changed = setup.file(
        "changed.csv",
        &rows.replace("avi@example.co.il", "avi@print.co.il"),
    );
    let again = setup.import(&changed, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    let text = stdout(&again);
    assert!(
        text.contains("enqueued 0, already enqueued 2, rejected 0"),
        "{text}"
    );
    assert!(text.contains("row 2  c-1  differs in: email"), "{text}");
    assert_eq!(setup.count("SELECT count(*) FROM vendorflow.runs").await, 2);
}

#[tokio::test]
async fn a_dry_run_reports_without_writing() {
    let setup = Setup::new().await;
    let file = setup.file("vendors.csv", MIXED_ROWS);
    // A dry run needs neither the master key nor the provider: nothing is encrypted or enqueued.
    let marketplace = setup.marketplace.to_string();
    let dry = setup.cli_with(
        &[
            "vendors",
            "import",
            &file,
            "--marketplace",
            &marketplace,
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(dry.status.code(), Some(2), "{}", describe(&dry));
    assert!(
        stdout(&dry).contains("dry run: would enqueue 3, already enqueued 0, rejected 3"),
        "{}",
        describe(&dry)
    );
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.vendors").await,
        0
    );
    assert_eq!(setup.count("SELECT count(*) FROM vendorflow.runs").await, 0);
}

#[tokio::test]
async fn wrong_input_fails_naming_the_flag_the_column_or_the_setting() {
    let setup = Setup::new().await;
    let file = setup.file("vendors.csv", MIXED_ROWS);

    let no_flag = setup.cli(&["vendors", "import", &file]);
    assert!(!no_flag.status.success());
    assert!(
        stderr(&no_flag).contains("--marketplace"),
        "{}",
        describe(&no_flag)
    );

    let unknown = setup.cli(&[
        "vendors",
        "import",
        &file,
        "--marketplace",
        &Uuid::now_v7().to_string(),
    ]);
    assert_eq!(unknown.status.code(), Some(1), "{}", describe(&unknown));
    assert!(
        stderr(&unknown).contains("--marketplace: no marketplace"),
        "{}",
        describe(&unknown)
    );

    let missing = setup.import("/nonexistent/vendors.csv", &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("FILE: cannot read"),
        "{}",
        describe(&missing)
    );

    let path = setup.dir.join("bad-header.csv");
    std::fs::write(&path, "external_id,name,phone\ns-1,A,03-1234567\n").unwrap();
    let bad_header = setup.import(path.to_str().unwrap(), &[]);
    assert_eq!(bad_header.status.code(), Some(1));
    assert!(
        stderr(&bad_header).contains("unknown column `name`"),
        "{}",
        describe(&bad_header)
    );

    let path = setup.dir.join("unclosed.csv");
    std::fs::write(&path, format!("{HEADER}\ns-1,\"Never closed,1\n")).unwrap();
    let unclosed = setup.import(path.to_str().unwrap(), &[]);
    assert_eq!(unclosed.status.code(), Some(1));
    assert!(
        stderr(&unclosed).contains("row 2 (line 2): a quoted field is never closed"),
        "{}",
        describe(&unclosed)
    );

    let marketplace = setup.marketplace.to_string();
    let no_key = setup.cli_with(
        &["vendors", "import", &file, "--marketplace", &marketplace],
        &[],
    );
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        stderr(&no_key).contains("VENDORFLOW_MASTER_KEY"),
        "{}",
        describe(&no_key)
    );
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.vendors").await,
        0
    );
}

#[tokio::test]
async fn a_row_whose_corporate_number_another_vendor_has_is_rejected() {
    let setup = Setup::new().await;
    let rows = "\
d-1,\"דנה קרמיקה בע\"\"מ\",515555555,company,dana@example.co.il,052-123-4567,clearing,12,571,041116
d-2,Dana Again,515555555,company,dana2@example.co.il,052-123-4567,documents_only,,,
";
    let file = setup.file("duplicate.csv", rows);
    let imported = setup.import(&file, &["--json"]);
    assert_eq!(imported.status.code(), Some(2), "{}", describe(&imported));
    let report: Value = serde_json::from_str(&stdout(&imported)).unwrap();
    assert_eq!(report["enqueued"].as_array().unwrap().len(), 1, "{report}");
    let rejected = &report["rejected"][0];
    assert_eq!(rejected["row"], 3, "{report}");
    assert_eq!(rejected["errors"][0]["column"], "corporate_number");
    assert_eq!(rejected["errors"][0]["code"], "corporate_number_taken");
    assert_eq!(
        setup.count("SELECT count(*) FROM vendorflow.vendors").await,
        1
    );
}
