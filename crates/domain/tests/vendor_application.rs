//! The onboarding body of design.md §8, parsed through the public API of `domain`.

use domain::errors::{Lang, ValidationErrors};
use domain::vendor::{
    BusinessType, Email, ExternalId, LegalName, Mode, ModeKind, PublicVendorApplication,
    VendorApplication,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The example of design.md §8.
fn example_body() -> Value {
    json!({"vendor": {
        "external_id": "seller-1042",
        "legal_name": "דנה קרמיקה בע\"מ",
        "corporate_number": "515555555",
        "business_type": "company",
        "email": "dana@example.co.il",
        "phone": "052-123-4567",
        "mode": "clearing",
        "bank_account": {"bank": 12, "branch": 571, "account": "041116"}
    }})
}

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    *body.pointer_mut(pointer).expect("the pointer exists") = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body["vendor"].as_object_mut().unwrap().remove(key);
    body
}

fn errors_of(body: &Value) -> Vec<(String, &'static str)> {
    VendorApplication::from_request_body(body)
        .expect_err("the body is invalid")
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn pairs(expected: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    expected.iter().map(|(f, c)| (f.to_string(), *c)).collect()
}

#[test]
fn the_design_example_parses_into_domain_types() {
    let app = VendorApplication::from_request_body(&example_body()).unwrap();
    assert_eq!(app.external_id.as_str(), "seller-1042");
    assert_eq!(app.legal_name.as_str(), "דנה קרמיקה בע\"מ");
    assert_eq!(app.corporate_number.as_str(), "515555555");
    assert_eq!(app.business_type, BusinessType::Company);
    assert_eq!(app.email.as_str(), "dana@example.co.il");
    assert_eq!(app.phone.as_e164(), "+972521234567");
    let Mode::Clearing { bank_account } = &app.mode else {
        panic!("a clearing vendor");
    };
    assert_eq!((bank_account.bank(), bank_account.branch()), (12, 571));
    assert_eq!(bank_account.expose_account_number(), "041116");
    assert!(bank_account.checked());
}

#[test]
fn the_public_json_has_no_account_number() {
    let app = VendorApplication::from_request_body(&example_body()).unwrap();
    let public = app.to_public_json();
    assert_eq!(
        public,
        json!({
            "external_id": "seller-1042",
            "legal_name": "דנה קרמיקה בע\"מ",
            "corporate_number": "515555555",
            "business_type": "company",
            "email": "dana@example.co.il",
            "phone": "+972521234567",
            "mode": "clearing",
            "bank_account": {"bank": 12, "branch": 571, "last4": "1116", "checked": true}
        })
    );
    assert!(!public.to_string().contains("041116"));
    let back: PublicVendorApplication = serde_json::from_value(public).unwrap();
    assert_eq!(back, app.public());
}

#[test]
fn debug_output_masks_the_account_number() {
    let app = VendorApplication::from_request_body(&example_body()).unwrap();
    let debug = format!("{app:?}");
    assert!(!debug.contains("041116"), "{debug}");
    assert!(debug.contains("1116"));
}

#[test]
fn a_bank_without_a_known_rule_is_accepted_and_marked_unchecked() {
    let body = with(
        example_body(),
        "/vendor/bank_account",
        json!({"bank": 54, "branch": 1, "account": "1234567"}),
    );
    let app = VendorApplication::from_request_body(&body).unwrap();
    assert_eq!(
        app.to_public_json()["bank_account"],
        json!({"bank": 54, "branch": 1, "last4": "4567", "checked": false})
    );
}

#[test]
fn a_documents_only_vendor_refuses_a_bank_account_and_takes_null() {
    let body = with(example_body(), "/vendor/mode", json!("documents_only"));
    let with_account = with(
        body.clone(),
        "/vendor/bank_account",
        json!({"bank": 12, "branch": 571, "account": "041116"}),
    );
    let errors = VendorApplication::from_request_body(&with_account).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors.errors()[0].field, "vendor.bank_account");
    assert_eq!(errors.errors()[0].code, "not_allowed");

    let with_null = with(body, "/vendor/bank_account", Value::Null);
    let app = VendorApplication::from_request_body(&with_null).unwrap();
    assert_eq!(app.mode, Mode::DocumentsOnly);
    let public = app.to_public_json();
    assert_eq!(public["mode"], "documents_only");
    assert!(public.get("bank_account").is_none());
}

#[test]
fn a_clearing_vendor_without_a_bank_account_is_refused_at_bank_account() {
    let body = without(example_body(), "bank_account");
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account", "required")])
    );
    let body = with(example_body(), "/vendor/bank_account", Value::Null);
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account", "required")])
    );
}

#[test]
fn a_failing_bank_check_is_reported_at_the_account() {
    let body = with(
        example_body(),
        "/vendor/bank_account/account",
        json!("041117"),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account.account", "bank_check_failed")])
    );
    let errors = VendorApplication::from_request_body(&body).unwrap_err();
    assert!(!errors.to_string().contains("041117"));
    assert!(!format!("{errors:?}").contains("041117"));
}

#[test]
fn every_bad_field_is_reported_at_once_with_one_error_each() {
    let body = json!({"vendor": {
        "external_id": "seller 1042",
        "legal_name": "   ",
        "corporate_number": "515555556",
        "business_type": "llc",
        "email": "dana@",
        "phone": "12345",
        "mode": "cash",
        "bank_account": {"bank": 99, "branch": 1000, "account": "12a"}
    }});
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.external_id", "invalid_characters"),
            ("vendor.legal_name", "required"),
            ("vendor.corporate_number", "check_digit_failed"),
            ("vendor.business_type", "invalid_business_type"),
            ("vendor.email", "invalid_email"),
            ("vendor.phone", "invalid_phone"),
            ("vendor.mode", "invalid_mode"),
            ("vendor.bank_account.bank", "unknown_bank"),
            ("vendor.bank_account.branch", "invalid_branch"),
            ("vendor.bank_account.account", "invalid_account"),
        ])
    );
}

#[test]
fn errors_are_listed_in_field_order_whatever_their_kind() {
    let body = with(example_body(), "/vendor/external_id", json!("bad id"));
    let body = with(body, "/vendor/email", json!(5));
    let body = without(body, "legal_name");
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.external_id", "invalid_characters"),
            ("vendor.legal_name", "required"),
            ("vendor.email", "invalid_type"),
        ])
    );
}

#[test]
fn missing_fields_are_each_required() {
    let body = json!({"vendor": {}});
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.external_id", "required"),
            ("vendor.legal_name", "required"),
            ("vendor.corporate_number", "required"),
            ("vendor.business_type", "required"),
            ("vendor.email", "required"),
            ("vendor.phone", "required"),
            ("vendor.mode", "required"),
        ])
    );
}

#[test]
fn a_body_without_a_vendor_object_is_refused_at_vendor() {
    for body in [
        json!({}),
        json!({"vendor": null}),
        json!([]),
        json!("x"),
        json!(null),
    ] {
        assert_eq!(errors_of(&body), pairs(&[("vendor", "required")]), "{body}");
    }
    for vendor in [json!("x"), json!([1]), json!(3)] {
        assert_eq!(
            errors_of(&json!({"vendor": vendor})),
            pairs(&[("vendor", "invalid_type")])
        );
    }
}

#[test]
fn values_of_the_wrong_json_type_are_refused_as_invalid_type() {
    let body = with(example_body(), "/vendor/legal_name", json!(42));
    let body = with(body, "/vendor/email", json!(["dana@example.co.il"]));
    let body = with(body, "/vendor/mode", json!(true));
    let body = with(body, "/vendor/bank_account/bank", json!(12.5));
    let body = with(body, "/vendor/bank_account/branch", json!("57a"));
    let body = with(body, "/vendor/bank_account/account", json!(-41116));
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.legal_name", "invalid_type"),
            ("vendor.email", "invalid_type"),
            ("vendor.mode", "invalid_type"),
            ("vendor.bank_account.bank", "invalid_type"),
            ("vendor.bank_account.branch", "invalid_type"),
            ("vendor.bank_account.account", "invalid_type"),
        ])
    );
    let body = with(
        example_body(),
        "/vendor/bank_account",
        json!("12-571-041116"),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account", "invalid_type")])
    );
}

#[test]
fn codes_may_be_digit_strings_and_numbers_may_stand_for_text() {
    let body = with(
        example_body(),
        "/vendor/bank_account",
        json!({"bank": "12", "branch": " 571 ", "account": 41116}),
    );
    let body = with(body, "/vendor/corporate_number", json!(515555555));
    let body = with(body, "/vendor/phone", json!(972521234567u64));
    let body = with(body, "/vendor/external_id", json!(1042));
    let app = VendorApplication::from_request_body(&body).unwrap();
    let account = app.mode.bank_account().unwrap();
    assert_eq!(
        (
            account.bank(),
            account.branch(),
            account.expose_account_number()
        ),
        (12, 571, "41116")
    );
    assert_eq!(app.phone.as_e164(), "+972521234567");
    assert_eq!(app.external_id.as_str(), "1042");
}

#[test]
fn out_of_range_bank_and_branch_codes_are_refused() {
    let body = with(
        example_body(),
        "/vendor/bank_account",
        json!({"bank": 70000, "branch": 1000, "account": "041116"}),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.bank_account.bank", "unknown_bank"),
            ("vendor.bank_account.branch", "invalid_branch")
        ])
    );
    let body = with(
        example_body(),
        "/vendor/bank_account",
        json!({"bank": "99999999999999999999999", "branch": 571, "account": "041116"}),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account.bank", "unknown_bank")])
    );
}

#[test]
fn unknown_members_of_a_body_are_refused_each_at_its_path() {
    let mut body = example_body();
    body["vendor"]["website"] = json!("https://dana.example");
    body["vendor"]["bank_account"]["nickname"] = json!("main");
    body["metadata"] = json!({"source": "crm", "tags": [1, 2]});
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("metadata", "unknown_field"),
            ("vendor.bank_account.nickname", "unknown_field"),
            ("vendor.website", "unknown_field"),
        ])
    );
    // The typo the issue tells of: a clearing vendor without its account is refused twice over.
    let mut body = example_body();
    let account = body["vendor"]["bank_account"].take();
    body["vendor"]
        .as_object_mut()
        .unwrap()
        .remove("bank_account");
    body["vendor"]["bank_acount"] = account;
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("vendor.bank_acount", "unknown_field"),
            ("vendor.bank_account", "required"),
        ])
    );
}

#[test]
fn a_vendor_object_from_elsewhere_may_carry_more_than_is_read() {
    let mut vendor = example_body()["vendor"].clone();
    vendor["website"] = json!("https://dana.example");
    assert!(VendorApplication::from_vendor_value(&vendor, "rows[0]").is_ok());
}

#[test]
fn a_card_number_anywhere_is_refused_at_its_path() {
    let mut body = example_body();
    body["vendor"]["notes"] = json!("pay with 4580 4580 4580 4580");
    body["metadata"] = json!({"cards": [4111111111111111u64]});
    assert_eq!(
        errors_of(&body),
        pairs(&[
            ("metadata.cards[0]", "card_number_refused"),
            ("vendor.notes", "card_number_refused"),
            ("metadata", "unknown_field"),
        ])
    );
    let errors = VendorApplication::from_request_body(&body).unwrap_err();
    let error = errors.get("vendor.notes").unwrap();
    assert!(
        error.message(Lang::En).contains("single-use token"),
        "{}",
        error.message(Lang::En)
    );
    assert!(error.message(Lang::He).contains("אסימון"));
}

#[test]
fn a_card_number_in_a_known_field_gives_only_the_card_error() {
    let body = with(
        example_body(),
        "/vendor/phone",
        json!("4580-4580-4580-4580"),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.phone", "card_number_refused")])
    );
    let body = with(
        example_body(),
        "/vendor/bank_account/account",
        json!("4111111111111111"),
    );
    assert_eq!(
        errors_of(&body),
        pairs(&[("vendor.bank_account.account", "card_number_refused")])
    );
}

#[test]
fn from_vendor_value_puts_errors_under_the_given_prefix() {
    let vendor = with(example_body(), "/vendor/email", json!("nope"))["vendor"].clone();
    let errors = VendorApplication::from_vendor_value(&vendor, "rows[3]").unwrap_err();
    assert_eq!(errors.errors()[0].field, "rows[3].email");
    let errors = VendorApplication::from_vendor_value(&vendor, "").unwrap_err();
    assert_eq!(errors.errors()[0].field, "email");
    let mut vendor = example_body()["vendor"].clone();
    assert!(VendorApplication::from_vendor_value(&vendor, "").is_ok());
    vendor["memo"] = json!("5555555555554444");
    let errors = VendorApplication::from_vendor_value(&vendor, "").unwrap_err();
    assert_eq!(errors.errors()[0].field, "memo");
    assert_eq!(errors.errors()[0].code, "card_number_refused");
}

#[test]
fn errors_come_in_both_languages() {
    let body = with(example_body(), "/vendor/phone", json!("12345"));
    let errors: ValidationErrors = VendorApplication::from_request_body(&body).unwrap_err();
    let he = serde_json::to_value(errors.localized(Lang::He)).unwrap();
    let en = serde_json::to_value(errors.localized(Lang::En)).unwrap();
    assert_eq!(he[0]["field"], "vendor.phone");
    assert!(
        he[0]["message"]
            .as_str()
            .unwrap()
            .contains("מספר טלפון ישראלי")
    );
    assert!(
        en[0]["message"]
            .as_str()
            .unwrap()
            .contains("Israeli phone number")
    );
}

#[test]
fn business_types_accept_wire_names_and_hebrew_labels() {
    for (input, expected) in [
        ("exempt_dealer", BusinessType::ExemptDealer),
        ("Licensed_Dealer", BusinessType::LicensedDealer),
        ("company", BusinessType::Company),
        ("nonprofit", BusinessType::Nonprofit),
        ("partnership", BusinessType::Partnership),
        ("עוסק פטור", BusinessType::ExemptDealer),
        ("עוסק  מורשה", BusinessType::LicensedDealer),
        ("חברה בע\"מ", BusinessType::Company),
        ("חברה בע״מ", BusinessType::Company),
        ("חברה בעמ", BusinessType::Company),
        ("עמותה", BusinessType::Nonprofit),
        ("חל\"צ", BusinessType::Nonprofit),
        ("חל״צ", BusinessType::Nonprofit),
        ("שותפות", BusinessType::Partnership),
    ] {
        assert_eq!(BusinessType::parse(input), Ok(expected), "{input}");
    }
    for bad in ["llc", "עוסק", "exempt dealer", ""] {
        assert!(BusinessType::parse(bad).is_err(), "{bad}");
    }
    let body = with(example_body(), "/vendor/business_type", json!("עוסק מורשה"));
    let app = VendorApplication::from_request_body(&body).unwrap();
    assert_eq!(app.to_public_json()["business_type"], "licensed_dealer");
}

#[test]
fn business_types_map_to_sumit_company_types() {
    assert_eq!(BusinessType::Company.provider_company_type(), 0);
    assert_eq!(BusinessType::ExemptDealer.provider_company_type(), 1);
    assert_eq!(BusinessType::LicensedDealer.provider_company_type(), 2);
    assert_eq!(BusinessType::Partnership.provider_company_type(), 4);
    assert_eq!(BusinessType::Nonprofit.provider_company_type(), 5);
    for t in BusinessType::ALL {
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        assert_eq!(
            serde_json::from_value::<BusinessType>(json!(t.label_he())).unwrap(),
            t
        );
    }
}

#[test]
fn modes_are_the_two_wire_names() {
    assert_eq!(ModeKind::parse("clearing"), Ok(ModeKind::Clearing));
    assert_eq!(
        ModeKind::parse("documents_only"),
        Ok(ModeKind::DocumentsOnly)
    );
    assert_eq!(
        ModeKind::parse("Clearing").unwrap_err().code,
        "invalid_mode"
    );
}

#[test]
fn legal_names_are_trimmed_bounded_and_free_of_control_characters() {
    assert_eq!(
        LegalName::parse("  דנה קרמיקה  ").unwrap().as_str(),
        "דנה קרמיקה"
    );
    assert!(LegalName::parse(&"א".repeat(100)).is_ok());
    assert_eq!(
        LegalName::parse(&"א".repeat(101)).unwrap_err().code,
        "too_long"
    );
    assert_eq!(
        LegalName::parse("Dana\nLtd").unwrap_err().code,
        "invalid_characters"
    );
    assert_eq!(
        LegalName::parse("Dana\u{0}").unwrap_err().code,
        "invalid_characters"
    );
    assert_eq!(LegalName::parse("").unwrap_err().code, "required");
}

#[test]
fn emails_are_validated_and_their_domain_lowercased() {
    assert_eq!(
        Email::parse(" Dana.K@Example.CO.IL ").unwrap().as_str(),
        "Dana.K@example.co.il"
    );
    for bad in [
        "dana",
        "dana@",
        "@example.co.il",
        "dana@localhost",
        "da na@example.com",
        "dana@@example.com",
    ] {
        assert_eq!(
            Email::parse(bad).unwrap_err().code,
            "invalid_email",
            "{bad}"
        );
    }
    let long_local = format!("{}@example.com", "a".repeat(64));
    assert!(Email::parse(&long_local).is_ok());
    let too_long = format!("a@{}.com", "b".repeat(260));
    assert_eq!(Email::parse(&too_long).unwrap_err().code, "too_long");
}

#[test]
fn external_ids_are_short_and_of_a_safe_alphabet() {
    for good in ["seller-1042", "a", "A.b_c:d-9", &"x".repeat(64)] {
        assert!(ExternalId::parse(good).is_ok(), "{good}");
    }
    assert_eq!(
        ExternalId::parse(&"x".repeat(65)).unwrap_err().code,
        "too_long"
    );
    for bad in ["seller 1042", " seller", "סוחר", "a/b", "a\n"] {
        assert_eq!(
            ExternalId::parse(bad).unwrap_err().code,
            "invalid_characters",
            "{bad}"
        );
    }
    assert_eq!(ExternalId::parse("").unwrap_err().code, "required");
}

/// Any JSON value, with keys biased towards the ones the parser reads.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9 -]{0,24}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "vendor",
            "external_id",
            "legal_name",
            "corporate_number",
            "business_type",
            "email",
            "phone",
            "mode",
            "bank_account",
            "bank",
            "branch",
            "account",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ];
    leaf.prop_recursive(5, 96, 10, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One field's candidate values: (value or absent, number of errors it causes).
fn choice(options: Vec<(Option<Value>, usize)>) -> impl Strategy<Value = (Option<Value>, usize)> {
    prop::sample::select(options)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let _ = VendorApplication::from_request_body(&value);
        let _ = VendorApplication::from_request_body(&json!({"vendor": value.clone()}));
        let _ = VendorApplication::from_vendor_value(&value, "row");
    }

    #[test]
    fn arbitrary_changes_to_the_example_never_panic(
        key in prop::sample::select(vec![
            "external_id", "legal_name", "corporate_number", "business_type", "email", "phone",
            "mode", "bank_account",
        ]),
        value in arbitrary_json(),
    ) {
        let mut body = example_body();
        body["vendor"][key] = value;
        if let Ok(app) = VendorApplication::from_request_body(&body) {
            let public: PublicVendorApplication = serde_json::from_value(app.to_public_json()).unwrap();
            prop_assert_eq!(public, app.public());
        }
    }

    #[test]
    fn each_bad_field_gives_exactly_one_error(
        external_id in choice(vec![(Some(json!("seller-1")), 0), (Some(json!("bad id")), 1), (None, 1)]),
        legal_name in choice(vec![(Some(json!("Dana")), 0), (Some(json!("")), 1), (Some(json!(7)), 1)]),
        corporate in choice(vec![(Some(json!("123456782")), 0), (Some(json!("123456789")), 1), (None, 1)]),
        business in choice(vec![(Some(json!("עמותה")), 0), (Some(json!("llc")), 1)]),
        email in choice(vec![(Some(json!("a@b.co")), 0), (Some(json!("a@b")), 1), (Some(Value::Null), 1)]),
        phone in choice(vec![(Some(json!("02-6251111")), 0), (Some(json!("1-800-123-456")), 1)]),
        mode in prop::sample::select(vec![Some("clearing"), Some("documents_only"), Some("cash"), None]),
        bank in choice(vec![
            (Some(json!({"bank": 12, "branch": 571, "account": "041116"})), 0),
            (Some(json!({"bank": 12, "branch": 571, "account": "041117"})), 1),
            (Some(json!({"bank": 1, "branch": 1000, "account": ""})), 3),
            (Some(json!([])), 1),
            (None, 0),
        ]),
    ) {
        let mut vendor = serde_json::Map::new();
        let mut expected = 0;
        for (key, (value, errors)) in [
            ("external_id", external_id),
            ("legal_name", legal_name),
            ("corporate_number", corporate),
            ("business_type", business),
            ("email", email),
            ("phone", phone),
        ] {
            if let Some(value) = value {
                vendor.insert(key.to_owned(), value);
            }
            expected += errors;
        }
        if let Some(mode) = mode {
            vendor.insert("mode".to_owned(), json!(mode));
        }
        let (bank_value, bank_errors) = bank;
        let bank_present = bank_value.is_some();
        if let Some(bank_value) = bank_value {
            vendor.insert("bank_account".to_owned(), bank_value);
        }
        expected += match mode {
            Some("clearing") if !bank_present => 1,
            Some("clearing") => bank_errors,
            // Any account, good or bad, is one error: a documents-only vendor has none.
            Some("documents_only") => usize::from(bank_present),
            // A bad or missing mode is one error, and a present bank account is still checked.
            _ => 1 + bank_errors,
        };
        let result = VendorApplication::from_request_body(&json!({"vendor": vendor}));
        match result {
            Ok(_) => prop_assert_eq!(expected, 0),
            Err(errors) => {
                prop_assert_eq!(errors.len(), expected, "{:?}", errors);
                let mut fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
                fields.sort_unstable();
                fields.dedup();
                prop_assert_eq!(fields.len(), expected);
            }
        }
    }
}

#[test]
fn the_hebrew_business_type_message_lists_the_codes_the_api_accepts() {
    let problem = domain::vendor::BusinessType::parse("llc").unwrap_err();
    for code in domain::vendor::BusinessType::ALL {
        assert!(
            problem.message_he.contains(code.as_str()),
            "{}",
            problem.message_he
        );
        assert!(problem.message_en.contains(code.as_str()));
    }
}
