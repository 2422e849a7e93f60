//! `vendorflow vendors import FILE.csv --marketplace ID`: bulk onboarding from a CSV file.
//!
//! Every row is validated first, with the same parser as `POST /v1/onboardings`; rejected rows
//! are reported by row number, column and reason. Then each valid row is enqueued in its own
//! transaction by `api::onboarding::enqueue_onboarding`, exactly as the API does it (vendor row,
//! encrypted bank account, run). A row whose `external_id` the marketplace already has is
//! skipped and counted as already enqueued, so running the same file again enqueues nothing new,
//! and an import stopped half-way can simply be run again.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use domain::vendor::VendorApplication;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Connection as _;
use uuid::Uuid;

use super::csv;

/// The columns of an import file, in the documented order (any order is accepted).
pub const COLUMNS: [&str; 10] = [
    "external_id",
    "legal_name",
    "corporate_number",
    "business_type",
    "email",
    "phone",
    "mode",
    "bank",
    "branch",
    "account",
];

/// The exit code when some rows were rejected (the others were enqueued).
pub const EXIT_ROWS_REJECTED: u8 = 2;

/// Arguments of `vendors import`.
#[derive(Debug, Args)]
#[command(after_long_help = IMPORT_HELP)]
pub struct ImportArgs {
    /// The CSV file: a header row, then one vendor per row (see below).
    pub file: PathBuf,
    /// The marketplace the vendors belong to.
    #[arg(long)]
    pub marketplace: Uuid,
    /// Validate and report, and tell which rows are already enqueued, without enqueuing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Who is importing, for the runs' history (default: the OS user, else `cli`).
    #[arg(long)]
    pub actor: Option<String>,
}

const IMPORT_HELP: &str = "\
FILE FORMAT
  CSV (RFC 4180), UTF-8, comma-separated; fields with commas, quotes or line breaks in double
  quotes (\"\" for a quote). The header row is required and names these columns, in any order:

    external_id, legal_name, corporate_number, business_type, email, phone, mode,
    bank, branch, account

  business_type: exempt_dealer, licensed_dealer, company, nonprofit or partnership.
  mode: clearing (bank, branch and account required) or documents_only (leave them empty).
  Row numbers count the header as row 1, as a spreadsheet shows them.

  Example:
    external_id,legal_name,corporate_number,business_type,email,phone,mode,bank,branch,account
    seller-1042,\"דנה קרמיקה בע\"\"מ\",515555555,company,dana@example.co.il,052-123-4567,clearing,12,571,041116

BEHAVIOUR
  Every row is validated before anything is written. Valid rows are then enqueued one by one,
  exactly as POST /v1/onboardings does. A row whose external_id the marketplace already has is
  skipped and counted as already enqueued (a warning names the columns that differ from the
  stored vendor), so importing the same file again enqueues nothing new. Uses the service's
  settings: the database, VENDORFLOW_MASTER_KEY (to encrypt bank accounts), the provider
  settings and the workflows directory (to pin the definition runs start with).

EXIT STATUS
  0  every row was enqueued or was already enqueued
  2  some rows were rejected (the valid rows were enqueued; see the report)
  1  the import could not run (unreadable file, bad header, database or configuration error)";

/// A row that passed validation.
#[derive(Debug, Clone)]
pub struct ValidRow {
    /// The row number (the header is row 1).
    pub row: usize,
    /// The parsed application.
    pub application: VendorApplication,
}

/// One problem of a rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The CSV column at fault (`bank, branch, account` when the whole bank account is
    /// missing; `row` when the row itself is malformed).
    pub column: String,
    /// The machine code, e.g. `check_digit_failed`.
    pub code: String,
    /// The reason, in English.
    pub message: String,
}

/// A row that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// The row number (the header is row 1).
    pub row: usize,
    /// The row's external id as written, when it has one.
    pub external_id: Option<String>,
    /// Every problem found.
    pub errors: Vec<RowProblem>,
}

/// The outcome of validating a whole file.
#[derive(Debug, Clone)]
pub struct Validated {
    /// How many data rows the file has (blank lines excluded).
    pub rows: usize,
    /// The rows to enqueue, in file order.
    pub valid: Vec<ValidRow>,
    /// The rows refused, in file order.
    pub rejected: Vec<RejectedRow>,
}

/// Reads the header and validates every data row. Errors only for a file that cannot be
/// imported at all (not CSV, or a bad header); bad rows are in [`Validated::rejected`].
pub fn validate(text: &str) -> anyhow::Result<Validated> {
    let records = csv::parse(text)?;
    let Some((header, data)) = records.split_first() else {
        bail!(
            "the file is empty: a header row is required ({})",
            COLUMNS.join(",")
        );
    };
    let positions = header_positions(&header.fields)?;

    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    // The first row of each external id, to refuse a second one in the same file.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in data {
        let cell = |column: &str| {
            positions
                .get(column)
                .and_then(|&i| record.fields.get(i))
                .map(String::as_str)
                .unwrap_or("")
        };
        let external_id = Some(cell("external_id").trim().to_owned()).filter(|id| !id.is_empty());
        if record.fields.len() != header.fields.len() {
            rejected.push(RejectedRow {
                row: record.row,
                external_id,
                errors: vec![RowProblem {
                    column: "row".to_owned(),
                    code: "wrong_field_count".to_owned(),
                    message: format!(
                        "The row has {} fields; the header has {}.",
                        record.fields.len(),
                        header.fields.len()
                    ),
                }],
            });
            continue;
        }
        match VendorApplication::from_vendor_value(&row_json(&cell), "") {
            Ok(application) => {
                let id = application.external_id.as_str().to_owned();
                if let Some(first) = seen.get(&id) {
                    rejected.push(RejectedRow {
                        row: record.row,
                        external_id,
                        errors: vec![RowProblem {
                            column: "external_id".to_owned(),
                            code: "duplicate_in_file".to_owned(),
                            message: format!(
                                "Row {first} of this file has the same external_id; each \
                                 vendor may appear once."
                            ),
                        }],
                    });
                } else {
                    seen.insert(id, record.row);
                    valid.push(ValidRow {
                        row: record.row,
                        application,
                    });
                }
            }
            Err(errors) => rejected.push(RejectedRow {
                row: record.row,
                external_id,
                errors: errors
                    .errors()
                    .iter()
                    .map(|error| RowProblem {
                        column: column_of(&error.field),
                        code: error.code.to_owned(),
                        message: error.message_en.clone(),
                    })
                    .collect(),
            }),
        }
    }
    Ok(Validated {
        rows: data.len(),
        valid,
        rejected,
    })
}

/// The index of each known column, refusing unknown, repeated and missing ones.
fn header_positions(header: &[String]) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let mut positions = BTreeMap::new();
    for (index, title) in header.iter().enumerate() {
        let title = title.trim().to_ascii_lowercase();
        let Some(column) = COLUMNS.iter().find(|column| **column == title) else {
            bail!(
                "the header has an unknown column `{title}`; the columns are: {}",
                COLUMNS.join(", ")
            );
        };
        if positions.insert(*column, index).is_some() {
            bail!("the header names the column `{column}` twice");
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .filter(|column| !positions.contains_key(*column))
        .copied()
        .collect();
    if !missing.is_empty() {
        bail!(
            "the header lacks the column(s) {} (the first row must name the columns: {})",
            missing.join(", "),
            COLUMNS.join(",")
        );
    }
    Ok(positions)
}

/// A row as the vendor object of `POST /v1/onboardings`. Empty cells are left out (so they
/// are `required` where a value is needed); the bank account is present when any of its three
/// cells is filled.
fn row_json<'a>(cell: &impl Fn(&str) -> &'a str) -> Value {
    let mut vendor = Map::new();
    for column in &COLUMNS[..7] {
        let value = cell(column);
        if !value.trim().is_empty() {
            vendor.insert((*column).to_owned(), json!(value));
        }
    }
    let mut account = Map::new();
    for column in &COLUMNS[7..] {
        let value = cell(column);
        if !value.trim().is_empty() {
            account.insert((*column).to_owned(), json!(value));
        }
    }
    if !account.is_empty() {
        vendor.insert("bank_account".to_owned(), Value::Object(account));
    }
    Value::Object(vendor)
}

/// The CSV column of a parser error path (`bank_account.branch` is the column `branch`).
fn column_of(path: &str) -> String {
    match path {
        "bank_account" => "bank, branch, account".to_owned(),
        "" => "row".to_owned(),
        other => other
            .strip_prefix("bank_account.")
            .unwrap_or(other)
            .to_owned(),
    }
}

/// A row that was enqueued now.
#[derive(Debug, Clone, Serialize)]
struct EnqueuedRow {
    row: usize,
    external_id: String,
    vendor_id: Uuid,
    run_id: Uuid,
}

/// A row whose vendor existed already.
#[derive(Debug, Clone, Serialize)]
struct PresentRow {
    row: usize,
    external_id: String,
    vendor_id: Uuid,
    /// The columns whose value differs from the stored vendor (the bank account is compared by
    /// its last digits). The stored vendor is left as it is.
    differs: Vec<&'static str>,
}

/// The report of an import.
#[derive(Debug, Serialize)]
struct Report {
    file: String,
    marketplace_id: Uuid,
    dry_run: bool,
    rows: usize,
    enqueued: Vec<EnqueuedRow>,
    already_enqueued: Vec<PresentRow>,
    /// In a dry run: the rows that would be enqueued.
    would_enqueue: Vec<usize>,
    rejected: Vec<RejectedRow>,
}

/// Runs `vendors import`. `enqueue_with` gives the definitions and keyring (loaded only when
/// something is to be enqueued, so a dry run needs neither the master key nor the provider).
pub async fn run(
    args: ImportArgs,
    pool: sqlx::PgPool,
    actor: engine::Actor,
    wiring: impl AsyncFnOnce() -> anyhow::Result<(
        std::sync::Arc<engine::Definitions>,
        std::sync::Arc<store::secrets::Keyring>,
    )>,
) -> anyhow::Result<ExitCode> {
    let file = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("FILE: cannot read {file}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("FILE: {file} is not UTF-8 text (save it as CSV UTF-8)"))?;
    let validated = validate(&text).with_context(|| format!("FILE: {file}"))?;

    let mut conn = pool.acquire().await?;
    if store::marketplaces::find(&mut conn, args.marketplace)
        .await?
        .is_none()
    {
        bail!("--marketplace: no marketplace with id {}", args.marketplace);
    }

    let mut report = Report {
        file,
        marketplace_id: args.marketplace,
        dry_run: args.dry_run,
        rows: validated.rows,
        enqueued: Vec::new(),
        already_enqueued: Vec::new(),
        would_enqueue: Vec::new(),
        rejected: validated.rejected,
    };

    if args.dry_run {
        for row in &validated.valid {
            let id = row.application.external_id.as_str();
            match store::vendors::find_by_external_id(&mut conn, args.marketplace, id).await? {
                Some(existing) => report.already_enqueued.push(present(row, &existing)),
                None => report.would_enqueue.push(row.row),
            }
        }
    } else if !validated.valid.is_empty() {
        let (definitions, keyring) = wiring().await?;
        let mut progress = Progress::new(validated.valid.len());
        for (done, row) in validated.valid.iter().enumerate() {
            let mut tx = conn.begin().await?;
            let result = api::onboarding::enqueue_onboarding(
                &mut tx,
                &definitions,
                &keyring,
                args.marketplace,
                &row.application,
                actor.clone(),
            )
            .await;
            match result {
                Ok(enqueued) => {
                    tx.commit().await?;
                    report.enqueued.push(EnqueuedRow {
                        row: row.row,
                        external_id: row.application.external_id.as_str().to_owned(),
                        vendor_id: enqueued.vendor_id,
                        run_id: enqueued.run_id,
                    });
                }
                Err(api::onboarding::OnboardingError::ExternalIdTaken(id)) => {
                    // The failed insert aborted the transaction; the vendor is read afresh.
                    tx.rollback().await?;
                    let existing =
                        store::vendors::find_by_external_id(&mut conn, args.marketplace, &id)
                            .await?
                            .with_context(|| format!("row {}: vendor `{id}` vanished", row.row))?;
                    report.already_enqueued.push(present(row, &existing));
                }
                Err(api::onboarding::OnboardingError::CorporateNumberTaken { vendor_id }) => {
                    tx.rollback().await?;
                    report.rejected.push(RejectedRow {
                        row: row.row,
                        external_id: Some(row.application.external_id.as_str().to_owned()),
                        errors: vec![RowProblem {
                            column: "corporate_number".to_owned(),
                            code: "corporate_number_taken".to_owned(),
                            message: format!(
                                "Vendor {vendor_id} of this marketplace already has this \
                                 corporate number."
                            ),
                        }],
                    });
                }
                Err(other) => {
                    progress.finish();
                    return Err(anyhow::Error::new(other).context(format!(
                        "row {}: enqueuing failed; rows before it are enqueued, run the import \
                         again to continue",
                        row.row
                    )));
                }
            }
            progress.update(done + 1);
        }
        progress.finish();
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ROWS_REJECTED)
    })
}

/// The report entry of a row whose vendor exists, with the columns that differ.
fn present(row: &ValidRow, existing: &store::vendors::Vendor) -> PresentRow {
    let wanted = api::onboarding::vendor_row(existing.marketplace_id, &row.application);
    let mut differs = Vec::new();
    let pairs: [(&'static str, bool); 7] = [
        ("legal_name", wanted.legal_name == existing.legal_name),
        (
            "corporate_number",
            wanted.corporate_number == existing.corporate_number,
        ),
        (
            "business_type",
            wanted.business_type == existing.business_type,
        ),
        ("email", wanted.email == existing.email),
        ("phone", wanted.phone_e164 == existing.phone_e164),
        ("mode", wanted.mode == existing.mode),
        (
            "account",
            wanted.bank_account_last4 == existing.bank_account_last4,
        ),
    ];
    for (column, same) in pairs {
        if !same {
            differs.push(column);
        }
    }
    PresentRow {
        row: row.row,
        external_id: existing.external_id.clone(),
        vendor_id: existing.id,
        differs,
    }
}

fn print_report(report: &Report) {
    println!("{}: {} row(s)", report.file, report.rows);
    if !report.rejected.is_empty() {
        println!();
        println!("rejected rows ({}):", report.rejected.len());
        let mut table = super::table::Table::new(&["row", "external_id", "column", "reason"]);
        for rejected in &report.rejected {
            for (i, problem) in rejected.errors.iter().enumerate() {
                let first = i == 0;
                table.row(vec![
                    if first {
                        rejected.row.to_string()
                    } else {
                        String::new()
                    },
                    if first {
                        rejected.external_id.clone().unwrap_or_default()
                    } else {
                        String::new()
                    },
                    problem.column.clone(),
                    format!("{} ({})", problem.message, problem.code),
                ]);
            }
        }
        print!("{}", indent(&table.render()));
    }
    let changed: Vec<&PresentRow> = report
        .already_enqueued
        .iter()
        .filter(|row| !row.differs.is_empty())
        .collect();
    if !changed.is_empty() {
        println!();
        println!(
            "already enqueued with other details ({}); the stored vendors were left unchanged:",
            changed.len()
        );
        for row in changed {
            println!(
                "  row {}  {}  differs in: {}",
                row.row,
                row.external_id,
                row.differs.join(", ")
            );
        }
    }
    println!();
    if report.dry_run {
        println!(
            "dry run: would enqueue {}, already enqueued {}, rejected {}; nothing was written",
            report.would_enqueue.len(),
            report.already_enqueued.len(),
            report.rejected.len()
        );
    } else {
        println!(
            "enqueued {}, already enqueued {}, rejected {}",
            report.enqueued.len(),
            report.already_enqueued.len(),
            report.rejected.len()
        );
    }
    if !report.rejected.is_empty() {
        println!(
            "fix the rejected rows and import the file again: rows already enqueued are skipped"
        );
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (a log file or a
/// pipe gets nothing), redrawn at most every 100 ms.
struct Progress {
    total: usize,
    enabled: bool,
    drawn_at: Option<Instant>,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            enabled: std::io::stderr().is_terminal(),
            drawn_at: None,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.enabled {
            return;
        }
        let due = self
            .drawn_at
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
        if due || done == self.total {
            let _ignored = write!(std::io::stderr(), "\r{}", progress_line(done, self.total));
            let _ignored = std::io::stderr().flush();
            self.drawn_at = Some(Instant::now());
        }
    }

    fn finish(&mut self) {
        if self.enabled && self.drawn_at.is_some() {
            // Clears the bar's line so the report starts on a clean one.
            let _ignored = write!(std::io::stderr(), "\r\x1b[2K");
            let _ignored = std::io::stderr().flush();
        }
    }
}

/// `enqueuing [##########..........]  50/100`.
fn progress_line(done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "enqueuing [{}{}] {done:>width$}/{total}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        width = total.to_string().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "external_id,legal_name,corporate_number,business_type,email,phone,mode,bank,branch,account\n";

    #[test]
    fn good_rows_parse_and_bad_rows_name_their_columns() {
        let text = format!(
            "{HEADER}\
             s-1,\"דנה קרמיקה בע\"\"מ\",515555555,company,dana@example.co.il,052-123-4567,clearing,12,571,041116\n\
             s-2,Avi Print,515555555,licensed_dealer,avi@example.co.il,03-1234567,documents_only,,,\n\
             s-3,Bad One,515555556,company,not-an-email,052-123-4567,clearing,12,571,041117\n\
             s-4,No Bank,515555555,company,x@example.co.il,052-123-4567,clearing,,,\n"
        );
        let validated = validate(&text).unwrap();
        assert_eq!(validated.rows, 4);
        let valid: Vec<usize> = validated.valid.iter().map(|row| row.row).collect();
        assert_eq!(valid, vec![2, 3]);
        assert_eq!(
            validated.valid[0].application.legal_name.as_str(),
            "דנה קרמיקה בע\"מ"
        );

        let bad = &validated.rejected[0];
        assert_eq!((bad.row, bad.external_id.as_deref()), (4, Some("s-3")));
        let columns: Vec<&str> = bad.errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(columns, vec!["corporate_number", "email", "account"]);
        assert_eq!(bad.errors[0].code, "check_digit_failed");

        let no_bank = &validated.rejected[1];
        assert_eq!(no_bank.row, 5);
        assert_eq!(no_bank.errors[0].column, "bank, branch, account");
        assert_eq!(no_bank.errors[0].code, "required");
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_rejected_alone() {
        let text = format!(
            "{HEADER}s-1,A,515555555\n\
             s-2,Avi Print,515555555,company,avi@example.co.il,03-1234567,documents_only,,,\n"
        );
        let validated = validate(&text).unwrap();
        assert_eq!(validated.valid.len(), 1);
        assert_eq!(validated.rejected[0].errors[0].code, "wrong_field_count");
        assert!(validated.rejected[0].errors[0].message.contains("3 fields"));
    }

    #[test]
    fn a_second_row_with_the_same_external_id_is_rejected() {
        let row =
            "s-1,Avi Print,515555555,company,avi@example.co.il,03-1234567,documents_only,,,\n";
        let validated = validate(&format!("{HEADER}{row}{row}")).unwrap();
        assert_eq!(validated.valid.len(), 1);
        assert_eq!(validated.rejected[0].row, 3);
        assert_eq!(validated.rejected[0].errors[0].code, "duplicate_in_file");
        assert!(validated.rejected[0].errors[0].message.contains("Row 2"));
    }

    #[test]
    fn columns_may_come_in_any_order_and_bad_headers_are_refused() {
        let text = "mode,external_id,legal_name,corporate_number,business_type,email,phone,account,branch,bank\n\
                    documents_only,s-9,Avi,515555555,company,avi@example.co.il,03-1234567,,,\n";
        assert_eq!(validate(text).unwrap().valid.len(), 1);

        let unknown = validate("external_id,name\n").unwrap_err().to_string();
        assert!(unknown.contains("unknown column `name`"), "{unknown}");
        let missing =
            validate("external_id,legal_name,corporate_number,business_type,email,phone,mode\n")
                .unwrap_err()
                .to_string();
        assert!(missing.contains("bank, branch, account"), "{missing}");
        let twice = validate("external_id,external_id\n")
            .unwrap_err()
            .to_string();
        assert!(twice.contains("twice"), "{twice}");
        assert!(validate("").unwrap_err().to_string().contains("header row"));
    }

    #[test]
    fn the_progress_line_fills_in_proportion() {
        assert_eq!(
            progress_line(5, 10),
            "enqueuing [###############...............]  5/10"
        );
        assert_eq!(
            progress_line(0, 0),
            format!("enqueuing [{}] 0/0", "#".repeat(30))
        );
    }
}
