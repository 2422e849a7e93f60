//! Israeli bank accounts and the Masav check rules of each bank.
//!
//! The rules are those of providers.md §5 (Masav's "בדיקת חוקיות חשבון", as implemented by
//! `il-bank-account-validator`). Digits are numbered from the right: `d0` is the rightmost
//! digit of the account number left-padded to 9 digits, and the branch's digits are likewise
//! taken rightmost first (`b0` is its units digit).
//!
//! Banks with no rule we trust (branch-specific exceptions we have not verified, or no check at
//! all) are accepted unchecked, and the [`BankAccount`] records that; an unknown bank code is
//! refused.

use std::fmt;

use crate::errors::FieldProblem;

/// The outcome of a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankCheck {
    /// The bank's own check rule was applied and the account passed it.
    Passed,
    /// The bank is known but has no rule we apply; the account could not be checked.
    NoKnownRule,
}

/// Why a bank account was refused. The messages never contain the account number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BankProblem {
    #[error("unknown bank code {0}")]
    UnknownBank(u16),
    #[error("the branch number must be between 0 and 999")]
    InvalidBranch,
    #[error("the account number must be 1 to 9 digits, not all zero")]
    InvalidAccount,
    #[error("the account number does not pass the bank's check rule")]
    CheckFailed,
}

impl BankProblem {
    /// The member of `bank_account` the problem belongs to: `bank`, `branch` or `account`.
    pub fn field(self) -> &'static str {
        match self {
            BankProblem::UnknownBank(_) => "bank",
            BankProblem::InvalidBranch => "branch",
            BankProblem::InvalidAccount | BankProblem::CheckFailed => "account",
        }
    }

    pub fn to_field_problem(self) -> FieldProblem {
        match self {
            BankProblem::UnknownBank(_) => unknown_bank(),
            BankProblem::InvalidBranch => FieldProblem::new(
                "invalid_branch",
                "The branch number must be between 0 and 999.",
                "מספר הסניף חייב להיות בין 0 ל-999.",
            ),
            BankProblem::InvalidAccount => FieldProblem::new(
                "invalid_account",
                "The account number must be 1 to 9 digits, with no other characters.",
                "מספר החשבון חייב להכיל 1 עד 9 ספרות בלבד.",
            ),
            BankProblem::CheckFailed => FieldProblem::new(
                "bank_check_failed",
                "This account number is not valid for this bank and branch; please check it.",
                "מספר החשבון אינו תקין עבור הבנק והסניף שצוינו; נא לבדוק אותו.",
            ),
        }
    }
}

impl From<BankProblem> for FieldProblem {
    fn from(problem: BankProblem) -> Self {
        problem.to_field_problem()
    }
}

pub(crate) fn unknown_bank() -> FieldProblem {
    FieldProblem::new("unknown_bank", "Unknown bank code.", "קוד בנק לא מוכר.")
}

/// How a bank's accounts are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Leumi 10, Igud 13, Arab Israel 34.
    Leumi,
    /// Hapoalim 12.
    Hapoalim,
    /// Mizrahi-Tefahot 20.
    Mizrahi,
    /// Yahav 4.
    Yahav,
    /// Discount 11, Mercantile 17.
    Discount,
    /// Beinleumi 31, Poalei Agudat Israel (Pagi) 52.
    Beinleumi,
    /// The Postal Bank 9.
    Post,
    /// A known bank whose rule we do not apply.
    None,
}

/// The bank codes we accept, with their names and rules. Otsar HaHayal 14 and Masad 46 have
/// branch-specific exceptions to their rule that providers.md does not spell out, so they are
/// accepted unchecked rather than wrongly refused; Jerusalem 54 has no check; One Zero 18,
/// Citibank 22 and HSBC 23 have no rule in providers.md.
const BANKS: &[(u16, &str, Rule)] = &[
    (4, "Bank Yahav", Rule::Yahav),
    (9, "Postal Bank", Rule::Post),
    (10, "Bank Leumi", Rule::Leumi),
    (11, "Discount Bank", Rule::Discount),
    (12, "Bank Hapoalim", Rule::Hapoalim),
    (13, "Union Bank (Igud)", Rule::Leumi),
    (14, "Bank Otsar HaHayal", Rule::None),
    (17, "Mercantile Discount Bank", Rule::Discount),
    (18, "One Zero Digital Bank", Rule::None),
    (20, "Mizrahi-Tefahot Bank", Rule::Mizrahi),
    (22, "Citibank", Rule::None),
    (23, "HSBC", Rule::None),
    (31, "First International Bank (Beinleumi)", Rule::Beinleumi),
    (34, "Arab Israel Bank", Rule::Leumi),
    (46, "Bank Massad", Rule::None),
    (52, "Poalei Agudat Israel Bank (Pagi)", Rule::Beinleumi),
    (54, "Bank of Jerusalem", Rule::None),
];

fn rule_of(bank: u16) -> Option<Rule> {
    BANKS
        .iter()
        .find(|(code, _, _)| *code == bank)
        .map(|(_, _, rule)| *rule)
}

/// Every bank code accepted, in ascending order.
pub fn bank_codes() -> impl Iterator<Item = u16> {
    BANKS.iter().map(|(code, _, _)| *code)
}

/// The English name of a known bank code.
pub fn bank_name(bank: u16) -> Option<&'static str> {
    BANKS
        .iter()
        .find(|(code, _, _)| *code == bank)
        .map(|(_, name, _)| *name)
}

/// Checks an account with its bank's rule.
///
/// `branch` must be 0..=999 (branch 000 exists in some banks' numbering; the bank's rule, which
/// is defined over the branch's three digits, decides) and `account` 1 to 9 ASCII digits and not all zeros (an all-zero
/// account passes the Postal Bank's sum but is no one's account). When several parts are bad,
/// the first of bank, branch, account is reported.
pub fn check_bank_account(bank: u16, branch: u16, account: &str) -> Result<BankCheck, BankProblem> {
    match check_all(bank, branch, account) {
        Ok(check) => Ok(check),
        Err(problems) => Err(problems[0]),
    }
}

/// Like [`check_bank_account`], but reports every bad part at once (never an empty list). The
/// check rule itself runs only when bank, branch and account are each well formed.
pub(crate) fn check_all(
    bank: u16,
    branch: u16,
    account: &str,
) -> Result<BankCheck, Vec<BankProblem>> {
    let problems: Vec<BankProblem> = [
        bank_problem(bank),
        branch_problem(branch),
        account_problem(account),
    ]
    .into_iter()
    .flatten()
    .collect();
    let Some(rule) = rule_of(bank) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    if rule == Rule::None {
        return Ok(BankCheck::NoKnownRule);
    }
    if passes(rule, branch, account) {
        Ok(BankCheck::Passed)
    } else {
        Err(vec![BankProblem::CheckFailed])
    }
}

pub(crate) fn bank_problem(bank: u16) -> Option<BankProblem> {
    rule_of(bank)
        .is_none()
        .then_some(BankProblem::UnknownBank(bank))
}

pub(crate) fn branch_problem(branch: u16) -> Option<BankProblem> {
    (branch > 999).then_some(BankProblem::InvalidBranch)
}

pub(crate) fn account_problem(account: &str) -> Option<BankProblem> {
    let ok = !account.is_empty()
        && account.len() <= 9
        && account.bytes().all(|b| b.is_ascii_digit())
        && account.bytes().any(|b| b != b'0');
    (!ok).then_some(BankProblem::InvalidAccount)
}

/// Applies `rule`; the caller has checked the branch range and the account's digits.
fn passes(rule: Rule, branch: u16, account: &str) -> bool {
    // d[0] is the rightmost digit of the account left-padded to 9 digits.
    let mut d = [0u32; 9];
    for (i, b) in account.bytes().rev().enumerate() {
        d[i] = u32::from(b - b'0');
    }
    let branch = if rule == Rule::Mizrahi && branch > 400 {
        branch - 400
    } else {
        branch
    };
    let branch = u32::from(branch);
    let b = [branch % 10, branch / 10 % 10, branch / 100 % 10];

    // Σ d0..d(n-1) weighted 1..n.
    let ascending = |n: usize| -> u32 { (0..n).map(|i| d[i] * (i as u32 + 1)).sum() };

    match rule {
        Rule::Leumi => {
            let sum = d[0]
                + d[1] * 10
                + (2..=7).map(|i| d[i] * i as u32).sum::<u32>()
                + b[0] * 8
                + b[1] * 9
                + b[2] * 10;
            matches!(sum % 100, 90 | 72 | 70 | 60 | 20)
        }
        Rule::Hapoalim | Rule::Mizrahi | Rule::Yahav => {
            let sum = ascending(6) + b[0] * 7 + b[1] * 8 + b[2] * 9;
            let rest = sum % 11;
            match rule {
                Rule::Hapoalim => matches!(rest, 0 | 2 | 4 | 6),
                Rule::Mizrahi => matches!(rest, 0 | 2 | 4),
                _ => matches!(rest, 0 | 2),
            }
        }
        Rule::Discount => matches!(ascending(9) % 11, 0 | 2 | 4),
        Rule::Beinleumi => matches!(ascending(9) % 11, 0 | 6) || matches!(ascending(6) % 11, 0 | 6),
        Rule::Post => ascending(9) % 10 == 0,
        Rule::None => true,
    }
}

/// A vendor's bank account for clearing payouts: a known bank, a branch and an account number
/// that passed its bank's rule, or that belongs to a bank with no rule (`checked() == false`).
///
/// The account number is a secret of the vendor: `Debug` shows only its last 4 digits, there is
/// no `Display` or `Serialize`, and the full number is reached only through
/// [`BankAccount::expose_account_number`], for the provider call and for encryption at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount {
    bank: u16,
    branch: u16,
    account: String,
    checked: bool,
}

impl BankAccount {
    /// Validates the parts with [`check_bank_account`]. The account number is kept as given
    /// (leading zeros included), since providers compare it numerically.
    pub fn new(bank: u16, branch: u16, account: &str) -> Result<Self, BankProblem> {
        Self::new_reporting_all(bank, branch, account).map_err(|problems| problems[0])
    }

    /// Like [`BankAccount::new`], reporting every bad part.
    pub(crate) fn new_reporting_all(
        bank: u16,
        branch: u16,
        account: &str,
    ) -> Result<Self, Vec<BankProblem>> {
        let check = check_all(bank, branch, account)?;
        Ok(BankAccount {
            bank,
            branch,
            account: account.to_owned(),
            checked: check == BankCheck::Passed,
        })
    }

    pub fn bank(&self) -> u16 {
        self.bank
    }

    pub fn branch(&self) -> u16 {
        self.branch
    }

    /// Whether the bank's check rule was applied. `false` marks an account of a bank with no
    /// known rule, which only the bank itself (or the acquirer) can confirm.
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// The last 4 digits of the account number left-padded to 9, for display.
    pub fn last4(&self) -> String {
        let padded = format!("{:0>9}", self.account);
        padded[padded.len() - 4..].to_owned()
    }

    /// The full account number. Call this only to send it to the provider or to encrypt it.
    pub fn expose_account_number(&self) -> &str {
        &self.account
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("bank", &self.bank)
            .field("branch", &self.branch)
            .field("account", &format_args!("*****{}", self.last4()))
            .field("checked", &self.checked)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent restatement of providers.md §5, written from the left-padded string
    /// with explicit weight tables (index 0 = the leftmost of the 9 digits), to check the
    /// production rules against.
    fn reference(bank: u16, branch: u16, account: &str) -> Option<bool> {
        let padded: Vec<u32> = format!("{account:0>9}")
            .chars()
            .map(|c| c.to_digit(10).unwrap())
            .collect();
        let branch = if bank == 20 && branch > 400 {
            branch - 400
        } else {
            branch
        };
        let br: Vec<u32> = format!("{branch:03}")
            .chars()
            .map(|c| c.to_digit(10).unwrap())
            .collect();
        let dot =
            |weights: &[u32; 9]| -> u32 { padded.iter().zip(weights).map(|(x, w)| x * w).sum() };
        let full = dot(&[9, 8, 7, 6, 5, 4, 3, 2, 1]);
        let six = dot(&[0, 0, 0, 6, 5, 4, 3, 2, 1]);
        let branch_sum = |w: [u32; 3]| -> u32 { br[0] * w[0] + br[1] * w[1] + br[2] * w[2] };
        Some(match bank {
            10 | 13 | 34 => {
                let s = dot(&[0, 7, 6, 5, 4, 3, 2, 10, 1]) + branch_sum([10, 9, 8]);
                [90, 72, 70, 60, 20].contains(&(s % 100))
            }
            12 => [0, 2, 4, 6].contains(&((six + branch_sum([9, 8, 7])) % 11)),
            20 => [0, 2, 4].contains(&((six + branch_sum([9, 8, 7])) % 11)),
            4 => [0, 2].contains(&((six + branch_sum([9, 8, 7])) % 11)),
            11 | 17 => [0, 2, 4].contains(&(full % 11)),
            31 | 52 => [0, 6].contains(&(full % 11)) || [0, 6].contains(&(six % 11)),
            9 => full % 10 == 0,
            _ => return None,
        })
    }

    /// Each vector was computed by hand from the rule; the comment gives the sum and residue.
    const VALID: &[(u16, u16, &str, &str)] = &[
        // Leumi: d0 + d1·10 + d2..d7·2..7 + b0·8 + b1·9 + b2·10, %100 ∈ {90,72,70,60,20}.
        (10, 607, "11710022", "Σ 190, %100 = 90"),
        (10, 111, "11111116", "Σ 70, %100 = 70"),
        (10, 111, "11111118", "Σ 72, %100 = 72"),
        (10, 800, "123450", "Σ 160, %100 = 60"),
        (10, 800, "123410", "Σ 120, %100 = 20"),
        (
            10,
            800,
            "100123450",
            "d8 has no weight: same Σ 160 as 123450",
        ),
        (13, 800, "123450", "Igud uses Leumi's rule: 60"),
        (34, 800, "123410", "Arab Israel uses Leumi's rule: 20"),
        // Hapoalim: d0..d5·1..6 + b0·7 + b1·8 + b2·9, %11 ∈ {0,2,4,6}.
        (
            12,
            571,
            "041116",
            "Σ 35 + 7 + 56 + 45 = 143, %11 = 0 (design.md §8)",
        ),
        (12, 600, "123407", "Σ 101, %11 = 2"),
        (12, 600, "123409", "Σ 103, %11 = 4"),
        (12, 600, "123400", "Σ 94, %11 = 6"),
        // Mizrahi: %11 ∈ {0,2,4}, branches above 400 lose 400 first.
        (20, 406, "160778", "branch 406 → 6: Σ 121, %11 = 0"),
        (20, 6, "160778", "Σ 121, %11 = 0"),
        (20, 406, "160704", "branch 406 → 6: Σ 103, %11 = 4"),
        (
            20,
            400,
            "123401",
            "400 is not above 400: Σ 41 + 4·9 = 77, %11 = 0",
        ),
        // Yahav: %11 ∈ {0,2}.
        (4, 571, "041116", "Σ 143, %11 = 0"),
        (4, 571, "041118", "Σ 145, %11 = 2"),
        // Discount and Mercantile: d0..d8·1..9, %11 ∈ {0,2,4}.
        (11, 1, "000032018", "Σ 33, %11 = 0"),
        (11, 1, "000123406", "Σ 46, %11 = 2"),
        (17, 1, "000123408", "Σ 48, %11 = 4"),
        // Beinleumi and Pagi: %11 ∈ {0,6}, else the d0..d5 sum %11 ∈ {0,6}.
        (31, 1, "000032018", "Σ 33, %11 = 0"),
        (31, 1, "000032048", "Σ 39, %11 = 6"),
        (52, 1, "000123418", "Σ 50, %11 = 6"),
        (
            31,
            1,
            "123123404",
            "Σ 90 %11 = 2 fails; d0..d5 Σ 44 %11 = 0 passes",
        ),
        // Post: d0..d8·1..9, %10 = 0.
        (9, 1, "059121900", "Σ 150, %10 = 0"),
        (9, 1, "123123404", "Σ 90, %10 = 0"),
    ];

    const FAILING: &[(u16, u16, &str, &str)] = &[
        (10, 800, "123490", "Leumi Σ 200, %100 = 0"),
        (10, 607, "11710023", "Leumi Σ 191, %100 = 91"),
        (12, 600, "123406", "Hapoalim Σ 100, %11 = 1"),
        (12, 571, "041117", "Hapoalim Σ 144, %11 = 1"),
        (
            20,
            406,
            "160706",
            "Mizrahi Σ 105, %11 = 6: allowed for Hapoalim only",
        ),
        (
            4,
            600,
            "123409",
            "Yahav Σ 103, %11 = 4: allowed for Hapoalim, not Yahav",
        ),
        (
            11,
            1,
            "000123418",
            "Discount Σ 50, %11 = 6: allowed for Beinleumi only",
        ),
        (
            31,
            1,
            "123123406",
            "Beinleumi Σ 92 %11 = 4, d0..d5 Σ 46 %11 = 2",
        ),
        (9, 1, "123123409", "Post Σ 95, %10 = 5"),
    ];

    #[test]
    fn the_vectors_agree_with_the_reference() {
        for (bank, branch, account, why) in VALID {
            assert_eq!(
                reference(*bank, *branch, account),
                Some(true),
                "{bank}/{branch}/{account}: {why}"
            );
        }
        for (bank, branch, account, why) in FAILING {
            assert_eq!(
                reference(*bank, *branch, account),
                Some(false),
                "{bank}/{branch}/{account}: {why}"
            );
        }
    }

    #[test]
    fn valid_accounts_pass_their_bank_rule() {
        for (bank, branch, account, why) in VALID {
            assert_eq!(
                check_bank_account(*bank, *branch, account),
                Ok(BankCheck::Passed),
                "{bank}/{branch}/{account}: {why}"
            );
        }
    }

    #[test]
    fn invalid_accounts_fail_their_bank_rule() {
        for (bank, branch, account, why) in FAILING {
            assert_eq!(
                check_bank_account(*bank, *branch, account),
                Err(BankProblem::CheckFailed),
                "{bank}/{branch}/{account}: {why}"
            );
        }
    }

    #[test]
    fn known_banks_without_a_rule_are_accepted_unchecked() {
        for bank in [14, 18, 22, 23, 46, 54] {
            assert_eq!(
                check_bank_account(bank, 123, "999999"),
                Ok(BankCheck::NoKnownRule),
                "{bank}"
            );
            let account = BankAccount::new(bank, 123, "999999").unwrap();
            assert!(!account.checked());
        }
        assert!(BankAccount::new(12, 571, "041116").unwrap().checked());
    }

    #[test]
    fn unknown_bank_codes_are_refused() {
        for bank in [0, 1, 3, 99, 999, u16::MAX] {
            assert_eq!(
                check_bank_account(bank, 571, "041116"),
                Err(BankProblem::UnknownBank(bank))
            );
        }
    }

    #[test]
    fn branch_000_is_left_to_the_bank_rule() {
        // Hapoalim over branch 000: Σ d0..d5·1..6 = 2, %11 = 2 passes; 000011: Σ 3 fails.
        assert_eq!(check_bank_account(12, 0, "000002"), Ok(BankCheck::Passed));
        assert_eq!(reference(12, 0, "000002"), Some(true));
        assert_eq!(
            check_bank_account(12, 0, "000011"),
            Err(BankProblem::CheckFailed)
        );
        assert_eq!(reference(12, 0, "000011"), Some(false));
        // Discount's rule ignores the branch.
        assert_eq!(
            check_bank_account(11, 0, "000032018"),
            Ok(BankCheck::Passed)
        );
        assert!(BankAccount::new(12, 0, "2").is_ok());
    }

    #[test]
    fn branch_and_account_formats_are_enforced() {
        assert_eq!(
            check_bank_account(12, 1000, "041116"),
            Err(BankProblem::InvalidBranch)
        );
        for account in [
            "",
            "0",
            "000000000",
            "1234567890",
            "04111a",
            "041 116",
            "-41116",
            "٤١١١٦",
        ] {
            assert_eq!(
                check_bank_account(54, 1, account),
                Err(BankProblem::InvalidAccount),
                "{account:?}"
            );
        }
        assert_eq!(
            check_bank_account(54, 999, "123456789"),
            Ok(BankCheck::NoKnownRule)
        );
    }

    #[test]
    fn every_bad_part_is_reported_and_the_rule_runs_only_on_good_parts() {
        assert_eq!(
            check_all(99, 1000, "x"),
            Err(vec![
                BankProblem::UnknownBank(99),
                BankProblem::InvalidBranch,
                BankProblem::InvalidAccount
            ])
        );
        assert_eq!(
            check_all(12, 1000, "041117"),
            Err(vec![BankProblem::InvalidBranch])
        );
    }

    #[test]
    fn problems_point_at_their_member_and_never_quote_the_account() {
        assert_eq!(BankProblem::UnknownBank(99).field(), "bank");
        assert_eq!(BankProblem::InvalidBranch.field(), "branch");
        assert_eq!(BankProblem::CheckFailed.field(), "account");
        assert_eq!(
            BankProblem::CheckFailed.to_field_problem().code,
            "bank_check_failed"
        );
        let err = BankAccount::new(12, 571, "041117").unwrap_err();
        assert!(!err.to_string().contains("041117"));
    }

    #[test]
    fn debug_masks_all_but_the_last_four_digits() {
        let account = BankAccount::new(12, 571, "041116").unwrap();
        let debug = format!("{account:?}");
        assert_eq!(
            debug,
            "BankAccount { bank: 12, branch: 571, account: *****1116, checked: true }"
        );
        assert!(!debug.contains("041116"));
        assert_eq!(account.last4(), "1116");
        assert_eq!(BankAccount::new(54, 1, "42").unwrap().last4(), "0042");
        assert_eq!(account.expose_account_number(), "041116");
    }

    #[test]
    fn bank_names_are_known_for_accepted_codes() {
        assert_eq!(bank_name(12), Some("Bank Hapoalim"));
        assert_eq!(bank_name(99), None);
    }

    proptest! {
        #[test]
        fn the_rules_match_the_reference(
            bank in prop::sample::select(vec![4u16, 9, 10, 11, 12, 13, 17, 20, 31, 34, 52]),
            branch in 1u16..=999,
            account in "[0-9]{1,9}",
        ) {
            prop_assume!(account.bytes().any(|b| b != b'0'));
            let expected = reference(bank, branch, &account).unwrap();
            let actual = check_bank_account(bank, branch, &account);
            if expected {
                prop_assert_eq!(actual, Ok(BankCheck::Passed));
            } else {
                prop_assert_eq!(actual, Err(BankProblem::CheckFailed));
            }
        }

        #[test]
        fn leading_zeros_of_the_account_do_not_matter(
            bank in prop::sample::select(vec![4u16, 9, 10, 11, 12, 20, 31, 54]),
            branch in 1u16..=999,
            account in "[1-9][0-9]{0,5}",
        ) {
            prop_assert_eq!(
                check_bank_account(bank, branch, &account),
                check_bank_account(bank, branch, &format!("{account:0>9}"))
            );
        }
    }
}
