//! A vendor's onboarding application, parsed from the marketplace's JSON (design.md §8) into
//! validated domain types.
//!
//! Parsing reports one error per bad field and every bad field at once, each at its JSON path
//! (`vendor.bank_account.account`). A request body's unknown members are refused at their paths
//! (a typo such as `bank_acount` must not onboard a vendor without its account); a vendor object
//! from elsewhere (a CSV row) may carry more than we read. A raw card number anywhere in the body
//! is refused at its path. Nothing here panics on any input.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::ValidateEmail;

use crate::bank::{self, BankAccount};
use crate::card::{self, join_path};
use crate::errors::{FieldError, FieldProblem, ValidationErrors};
use crate::input::{self, Shape};
use crate::israeli_id::CorporateNumber;
use crate::phone::PhoneNumber;

/// The vendor's legal form, which decides how it is registered at the provider and which
/// documents it may issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum BusinessType {
    /// עוסק פטור: below the VAT threshold; charges no VAT, issues receipts.
    ExemptDealer,
    /// עוסק מורשה: charges VAT, issues tax invoices.
    LicensedDealer,
    /// חברה בע"מ.
    Company,
    /// עמותה or חל"צ.
    Nonprofit,
    /// שותפות.
    Partnership,
}

impl BusinessType {
    pub const ALL: [BusinessType; 5] = [
        BusinessType::ExemptDealer,
        BusinessType::LicensedDealer,
        BusinessType::Company,
        BusinessType::Nonprofit,
        BusinessType::Partnership,
    ];

    /// Accepts the wire names (`exempt_dealer`, any ASCII case) and the Hebrew labels
    /// (עוסק פטור, עוסק מורשה, חברה בע"מ, עמותה, חל"צ, שותפות), with either ASCII quotes or
    /// the Hebrew gershayim ״, and with or without them (בעמ, חלצ).
    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldProblem::required());
        }
        if let Some(found) = BusinessType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(trimmed))
        {
            return Ok(found);
        }
        // Hebrew: drop quote marks and gershayim, and collapse runs of whitespace.
        let hebrew: String = trimmed
            .chars()
            .filter(|c| !matches!(c, '"' | '\'' | '״' | '׳' | '“' | '”' | '„'))
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match hebrew.as_str() {
            "עוסק פטור" => Ok(BusinessType::ExemptDealer),
            "עוסק מורשה" => Ok(BusinessType::LicensedDealer),
            "חברה בעמ" | "חברה" | "בעמ" => Ok(BusinessType::Company),
            // The last two are our own label_he, so that it parses back.
            "עמותה" | "חלצ" | "עמותה / חלצ" | "עמותה/חלצ" => {
                Ok(BusinessType::Nonprofit)
            }
            "שותפות" => Ok(BusinessType::Partnership),
            _ => Err(FieldProblem::new(
                "invalid_business_type",
                "The business type must be one of exempt_dealer, licensed_dealer, company, \
                 nonprofit, partnership.",
                "סוג העסק חייב להיות אחד מאלה: exempt_dealer (עוסק פטור), licensed_dealer (עוסק \
                 מורשה), company (חברה), nonprofit (עמותה), partnership (שותפות).",
            )),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BusinessType::ExemptDealer => "exempt_dealer",
            BusinessType::LicensedDealer => "licensed_dealer",
            BusinessType::Company => "company",
            BusinessType::Nonprofit => "nonprofit",
            BusinessType::Partnership => "partnership",
        }
    }

    /// The Hebrew label, for documents and the dashboard.
    pub fn label_he(self) -> &'static str {
        match self {
            BusinessType::ExemptDealer => "עוסק פטור",
            BusinessType::LicensedDealer => "עוסק מורשה",
            BusinessType::Company => "חברה בע\"מ",
            BusinessType::Nonprofit => "עמותה / חל\"צ",
            BusinessType::Partnership => "שותפות",
        }
    }

    /// SUMIT's `Company.CompanyType` for `/website/companies/create/` (providers.md §1.3:
    /// 0 CompanyWithVAT, 1 VATExemptDealer, 2 LicensedDealer, 3 Fellowship, 4 Partnership,
    /// 5 CommunityInterestCompany, …).
    ///
    /// SUMIT does not document which value a בע"מ or a nonprofit should use. A בע"מ is a
    /// company that charges VAT, so 0 CompanyWithVAT. For nonprofits we choose 5
    /// CommunityInterestCompany, the closest English rendering of חל"צ; it is a doubt: 3
    /// Fellowship may be SUMIT's name for an עמותה, and since this type merges עמותה and
    /// חל"צ we cannot tell them apart. Revisit when SUMIT confirms.
    pub fn provider_company_type(self) -> i32 {
        match self {
            BusinessType::Company => 0,
            BusinessType::ExemptDealer => 1,
            BusinessType::LicensedDealer => 2,
            BusinessType::Partnership => 4,
            BusinessType::Nonprofit => 5,
        }
    }
}

impl fmt::Display for BusinessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for BusinessType {
    type Error = FieldProblem;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        BusinessType::parse(&value)
    }
}

impl From<BusinessType> for &'static str {
    fn from(value: BusinessType) -> Self {
        value.as_str()
    }
}

/// How the vendor works with the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Takes card payments on its own terminal; payouts go to this account.
    Clearing { bank_account: BankAccount },
    /// Only issues invoices and receipts.
    DocumentsOnly,
}

impl Mode {
    pub fn kind(&self) -> ModeKind {
        match self {
            Mode::Clearing { .. } => ModeKind::Clearing,
            Mode::DocumentsOnly => ModeKind::DocumentsOnly,
        }
    }

    pub fn bank_account(&self) -> Option<&BankAccount> {
        match self {
            Mode::Clearing { bank_account } => Some(bank_account),
            Mode::DocumentsOnly => None,
        }
    }
}

/// [`Mode`] without its data, as it appears on the wire: `clearing` or `documents_only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeKind {
    Clearing,
    DocumentsOnly,
}

impl ModeKind {
    /// Accepts the wire names exactly.
    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        match input {
            "clearing" => Ok(ModeKind::Clearing),
            "documents_only" => Ok(ModeKind::DocumentsOnly),
            "" => Err(FieldProblem::required()),
            _ => Err(FieldProblem::new(
                "invalid_mode",
                "The mode must be clearing or documents_only.",
                "המצב חייב להיות clearing (סליקה) או documents_only (מסמכים בלבד).",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModeKind::Clearing => "clearing",
            ModeKind::DocumentsOnly => "documents_only",
        }
    }
}

impl fmt::Display for ModeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines a validated string newtype with `parse`, `as_str`, `AsRef<str>`, `Display`,
/// `Debug` and serde through `parse`.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldProblem;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

string_newtype!(
    /// The vendor's registered name: trimmed, 1 to 100 characters, no control characters.
    LegalName
);

impl LegalName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        let name = input.trim();
        if name.is_empty() {
            return Err(FieldProblem::required());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(too_long(Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldProblem::new(
                "invalid_characters",
                "The name must not contain control characters such as line breaks or tabs.",
                "השם אינו יכול לכלול תווי בקרה כגון ירידת שורה או טאב.",
            ));
        }
        Ok(LegalName(name.to_owned()))
    }
}

string_newtype!(
    /// An e-mail address: trimmed, at most 254 characters, valid by the HTML5 rule, with a
    /// dotted domain, and the domain lowercased (the local part keeps its case, which a mail
    /// server may honour).
    Email
);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        let email = input.trim();
        if email.is_empty() {
            return Err(FieldProblem::required());
        }
        if email.chars().count() > Self::MAX_CHARS {
            return Err(too_long(Self::MAX_CHARS));
        }
        let invalid = || {
            FieldProblem::new(
                "invalid_email",
                "Enter a valid e-mail address, e.g. dana@example.co.il.",
                "יש להזין כתובת דוא\"ל תקינה, למשל dana@example.co.il.",
            )
        };
        if !email.validate_email() {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        // The HTML5 rule accepts `dana@localhost`; a vendor's documents and notices must be
        // deliverable across the internet, so the domain needs a dot.
        if !domain.contains('.') {
            return Err(invalid());
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }
}

string_newtype!(
    /// The marketplace's own id of the vendor: 1 to 64 of `A-Z a-z 0-9 . _ : -`, taken as is.
    ExternalId
);

impl ExternalId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, FieldProblem> {
        if input.is_empty() {
            return Err(FieldProblem::required());
        }
        if input.chars().count() > Self::MAX_CHARS {
            return Err(too_long(Self::MAX_CHARS));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        if !input.bytes().all(allowed) {
            return Err(FieldProblem::new(
                "invalid_characters",
                "The id may contain only letters A-Z, digits and . _ : -",
                "המזהה יכול לכלול רק אותיות לטיניות, ספרות והתווים . _ : -",
            ));
        }
        Ok(ExternalId(input.to_owned()))
    }
}

fn too_long(max: usize) -> FieldProblem {
    FieldProblem::new(
        "too_long",
        format!("At most {max} characters."),
        format!("לכל היותר {max} תווים."),
    )
}

/// A vendor to onboard, every part validated.
///
/// Its fields are public because each is a validated type and every combination of them is a
/// valid application. `Debug` masks the bank account; for storing, use
/// [`VendorApplication::to_public_json`], which leaves the account number out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorApplication {
    pub external_id: ExternalId,
    pub legal_name: LegalName,
    pub corporate_number: CorporateNumber,
    pub business_type: BusinessType,
    pub email: Email,
    pub phone: PhoneNumber,
    pub mode: Mode,
}

/// A [`VendorApplication`] without the bank account number, fit for run input, history and
/// responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicVendorApplication {
    pub external_id: ExternalId,
    pub legal_name: LegalName,
    pub corporate_number: CorporateNumber,
    pub business_type: BusinessType,
    pub email: Email,
    pub phone: PhoneNumber,
    pub mode: ModeKind,
    /// Present for clearing vendors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<PublicBankAccount>,
}

/// What may be shown of a bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicBankAccount {
    pub bank: u16,
    pub branch: u16,
    pub last4: String,
    /// Whether the bank's check rule was applied (`false` for banks without a known rule).
    pub checked: bool,
}

impl From<&BankAccount> for PublicBankAccount {
    fn from(account: &BankAccount) -> Self {
        PublicBankAccount {
            bank: account.bank(),
            branch: account.branch(),
            last4: account.last4(),
            checked: account.checked(),
        }
    }
}

/// The members the body of `POST /v1/onboardings` may have.
pub const ONBOARDING_BODY_SHAPE: Shape = Shape::Object(&[(
    "vendor",
    Shape::Object(&[
        ("external_id", Shape::Any),
        ("legal_name", Shape::Any),
        ("corporate_number", Shape::Any),
        ("business_type", Shape::Any),
        ("email", Shape::Any),
        ("phone", Shape::Any),
        ("mode", Shape::Any),
        (
            "bank_account",
            Shape::Object(&[
                ("bank", Shape::Any),
                ("branch", Shape::Any),
                ("account", Shape::Any),
            ]),
        ),
    ]),
)]);

impl VendorApplication {
    /// Parses the body of `POST /v1/onboardings`: `{"vendor": {...}}`. Errors are at paths
    /// under `vendor.`, a card number anywhere in the body is refused at its path, and so is
    /// every member [`ONBOARDING_BODY_SHAPE`] does not know (`unknown_field`).
    pub fn from_request_body(body: &Value) -> Result<VendorApplication, ValidationErrors> {
        let mut errors = Errors::default();
        for path in card::find_card_numbers(body) {
            errors.report(path, card::card_number_refused());
        }
        for unknown in input::unknown_members(body, &ONBOARDING_BODY_SHAPE, "") {
            errors.report(unknown.field.clone(), input::unknown_field());
        }
        match body.get("vendor") {
            None | Some(Value::Null) => {
                errors.report("vendor".to_owned(), FieldProblem::required());
                Err(errors.finish())
            }
            Some(vendor) => parse_vendor(vendor, "vendor", &mut errors),
        }
    }

    /// Parses one vendor object, e.g. a row of a CSV import turned into JSON, with every
    /// error path under `path_prefix` (`""` for none; `rows[3]` gives `rows[3].email`). A card
    /// number anywhere in `vendor` is refused at its path.
    pub fn from_vendor_value(
        vendor: &Value,
        path_prefix: &str,
    ) -> Result<VendorApplication, ValidationErrors> {
        let mut errors = Errors::default();
        let mut cards = Vec::new();
        card::find_under(vendor, path_prefix, &mut cards);
        for path in cards {
            errors.report(path, card::card_number_refused());
        }
        parse_vendor(vendor, path_prefix, &mut errors)
    }

    /// The application without the bank account number.
    pub fn public(&self) -> PublicVendorApplication {
        PublicVendorApplication {
            external_id: self.external_id.clone(),
            legal_name: self.legal_name.clone(),
            corporate_number: self.corporate_number.clone(),
            business_type: self.business_type,
            email: self.email.clone(),
            phone: self.phone.clone(),
            mode: self.mode.kind(),
            bank_account: self.mode.bank_account().map(PublicBankAccount::from),
        }
    }

    /// [`VendorApplication::public`] as JSON, for run input: `{"external_id", "legal_name",
    /// "corporate_number", "business_type", "email", "phone" (E.164), "mode",
    /// "bank_account": {"bank", "branch", "last4", "checked"}}`.
    pub fn to_public_json(&self) -> Value {
        serde_json::to_value(self.public())
            .expect("a struct of strings, integers and booleans always serializes")
    }
}

/// The errors found so far, at most one per path: the first problem reported at a path wins,
/// so a card number hides the field's own complaint about the same value.
#[derive(Default)]
struct Errors {
    errors: Vec<FieldError>,
}

impl Errors {
    fn report(&mut self, path: String, problem: FieldProblem) {
        if !self.errors.iter().any(|e| e.field == path) {
            self.errors.push(problem.at(path));
        }
    }

    fn finish(self) -> ValidationErrors {
        ValidationErrors::new(self.errors)
    }
}

/// How a member of the vendor object may be given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    /// Only a JSON string.
    Text,
    /// A JSON string or a non-negative integer, taken as its decimal digits. Numbers lose
    /// leading zeros, which is harmless where the value is left-padded (corporate numbers,
    /// bank accounts) or carries a country code (phones).
    TextOrInteger,
}

/// The member `key` as text, or the problem with it. Missing and `null` are `required`.
fn member_text(
    members: &Map<String, Value>,
    key: &str,
    accept: Accept,
) -> Result<String, FieldProblem> {
    match members.get(key) {
        None | Some(Value::Null) => Err(FieldProblem::required()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Number(number)) if accept == Accept::TextOrInteger => {
            number.as_u64().map(|n| n.to_string()).ok_or_else(|| {
                FieldProblem::invalid_type("text or a whole number", "טקסט או מספר שלם")
            })
        }
        Some(_) => Err(match accept {
            Accept::Text => FieldProblem::invalid_type("text", "טקסט"),
            Accept::TextOrInteger => {
                FieldProblem::invalid_type("text or a whole number", "טקסט או מספר שלם")
            }
        }),
    }
}

/// A bank or branch code given as a JSON integer or a string of digits.
fn member_code(members: &Map<String, Value>, key: &str) -> Result<u64, FieldProblem> {
    let wrong_type = || FieldProblem::invalid_type("a whole number", "מספר שלם");
    match members.get(key) {
        None | Some(Value::Null) => Err(FieldProblem::required()),
        Some(Value::Number(number)) => number.as_u64().ok_or_else(wrong_type),
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() {
                Err(FieldProblem::required())
            } else if text.bytes().all(|b| b.is_ascii_digit()) {
                // Only absurdly long digit strings overflow; they are out of range anyway.
                Ok(text.parse().unwrap_or(u64::MAX))
            } else {
                Err(wrong_type())
            }
        }
        Some(_) => Err(wrong_type()),
    }
}

fn parse_vendor(
    vendor: &Value,
    prefix: &str,
    errors: &mut Errors,
) -> Result<VendorApplication, ValidationErrors> {
    let Some(members) = vendor.as_object() else {
        errors.report(
            prefix.to_owned(),
            FieldProblem::invalid_type("an object", "אובייקט"),
        );
        return Err(std::mem::take(errors).finish());
    };
    let path = |key: &str| join_path(prefix, key);

    // Each field is parsed independently, in order, so every bad one is reported.
    let mut fields = Fields {
        members,
        prefix,
        errors: &mut *errors,
    };
    let external_id = fields.get("external_id", Accept::TextOrInteger, ExternalId::parse);
    let legal_name = fields.get("legal_name", Accept::Text, LegalName::parse);
    let corporate_number = fields.get(
        "corporate_number",
        Accept::TextOrInteger,
        CorporateNumber::parse,
    );
    let business_type = fields.get("business_type", Accept::Text, BusinessType::parse);
    let email = fields.get("email", Accept::Text, Email::parse);
    let phone = fields.get("phone", Accept::TextOrInteger, PhoneNumber::parse);
    let mode_kind = fields.get("mode", Accept::Text, ModeKind::parse);

    // The bank account matters for clearing vendors. When the mode itself is bad it is still
    // checked if present, so that the marketplace learns of all its mistakes at once; for a
    // documents-only vendor it must be absent (or null).
    let bank_account = match mode_kind {
        Some(ModeKind::DocumentsOnly) => {
            // A documents-only vendor has no payouts: an account sent for one is a mistake
            // (the wrong mode, most likely), refused rather than silently dropped.
            if members
                .get("bank_account")
                .is_some_and(|value| !value.is_null())
            {
                errors.report(
                    path("bank_account"),
                    FieldProblem::new(
                        "not_allowed",
                        "A documents_only vendor has no bank account: leave bank_account out, \
                         or set mode to clearing.",
                        "לספק documents_only אין חשבון בנק: יש להשמיט את bank_account או לבחור \
                         mode clearing.",
                    ),
                );
            }
            None
        }
        Some(ModeKind::Clearing) => {
            parse_bank_account(members, &path("bank_account"), true, errors)
        }
        None => parse_bank_account(members, &path("bank_account"), false, errors),
    };

    let mode = match (mode_kind, bank_account) {
        (Some(ModeKind::DocumentsOnly), _) => Some(Mode::DocumentsOnly),
        (Some(ModeKind::Clearing), Some(bank_account)) => Some(Mode::Clearing { bank_account }),
        _ => None,
    };

    match (
        external_id,
        legal_name,
        corporate_number,
        business_type,
        email,
        phone,
        mode,
    ) {
        (
            Some(external_id),
            Some(legal_name),
            Some(corporate_number),
            Some(business_type),
            Some(email),
            Some(phone),
            Some(mode),
        ) if errors.errors.is_empty() => Ok(VendorApplication {
            external_id,
            legal_name,
            corporate_number,
            business_type,
            email,
            phone,
            mode,
        }),
        _ => Err(std::mem::take(errors).finish()),
    }
}

/// The members of one vendor object, read one at a time with their problems reported.
struct Fields<'a> {
    members: &'a Map<String, Value>,
    prefix: &'a str,
    errors: &'a mut Errors,
}

impl Fields<'_> {
    /// Reads `key` as text and parses it; on any problem reports it at the member's path.
    fn get<T>(
        &mut self,
        key: &str,
        accept: Accept,
        parse: impl Fn(&str) -> Result<T, FieldProblem>,
    ) -> Option<T> {
        match member_text(self.members, key, accept).and_then(|text| parse(&text)) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.errors.report(join_path(self.prefix, key), problem);
                None
            }
        }
    }
}

/// Parses `bank_account` at `path`, reporting each bad member. `required` says whether a
/// missing account is an error.
fn parse_bank_account(
    members: &Map<String, Value>,
    path: &str,
    required: bool,
    errors: &mut Errors,
) -> Option<BankAccount> {
    let account = match members.get("bank_account") {
        None | Some(Value::Null) => {
            if required {
                errors.report(path.to_owned(), FieldProblem::required());
            }
            return None;
        }
        Some(Value::Object(account)) => account,
        Some(_) => {
            errors.report(
                path.to_owned(),
                FieldProblem::invalid_type("an object", "אובייקט"),
            );
            return None;
        }
    };
    let member_path = |key: &str| join_path(path, key);

    let bank = member_code(account, "bank").and_then(|code| {
        let code = u16::try_from(code).map_err(|_| bank::unknown_bank())?;
        match bank::bank_problem(code) {
            Some(problem) => Err(problem.to_field_problem()),
            None => Ok(code),
        }
    });
    let branch = member_code(account, "branch").and_then(|code| {
        let code = u16::try_from(code).unwrap_or(u16::MAX);
        match bank::branch_problem(code) {
            Some(problem) => Err(problem.to_field_problem()),
            None => Ok(code),
        }
    });
    let number = member_text(account, "account", Accept::TextOrInteger).and_then(|text| {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err(FieldProblem::required());
        }
        match bank::account_problem(&text) {
            Some(problem) => Err(problem.to_field_problem()),
            None => Ok(text),
        }
    });

    match (bank, branch, number) {
        (Ok(bank), Ok(branch), Ok(number)) => match BankAccount::new(bank, branch, &number) {
            Ok(account) => Some(account),
            Err(problem) => {
                errors.report(member_path(problem.field()), problem.to_field_problem());
                None
            }
        },
        (bank, branch, number) => {
            for (key, result) in [
                ("bank", bank.err()),
                ("branch", branch.err()),
                ("account", number.err()),
            ] {
                if let Some(problem) = result {
                    errors.report(member_path(key), problem);
                }
            }
            None
        }
    }
}
