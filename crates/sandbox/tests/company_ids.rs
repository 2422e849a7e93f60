//! Organization ids start where the configuration says, so a restarted development sandbox does
//! not hand out ids that a database still associates with earlier vendors.

use sandbox::{SandboxConfig, spawn};
use serde_json::{Value, json};

#[tokio::test]
async fn the_first_organization_takes_the_configured_id_and_the_next_ones_count_up() {
    let sandbox = spawn(SandboxConfig {
        first_company_id: 4_200_001,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for corporate_number in ["515555555", "123456782"] {
        let answer: Value = client
            .post(format!("{}/website/companies/create/", sandbox.base_url))
            .json(&json!({
                "Credentials": {"CompanyID": sandbox.marketplace_company_id(),
                                "APIKey": sandbox.marketplace_api_key()},
                "Company": {"Name": "Vendor", "CorporateNumber": corporate_number, "CompanyType": 2,
                            "EmailAddress": "v@example.co.il", "Phone": "0521234567"},
                "Applications": ["Accounting"]
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["Status"], 0, "{answer}");
        ids.push(answer["Data"]["CompanyID"].as_i64().unwrap());
    }
    assert_eq!(ids, [4_200_001, 4_200_002]);
}
