//! Accounts.

use super::*;

#[tokio::test]
async fn accounts_are_unique_and_named_sensibly() {
    let f = fixture().await;
    f.create_account("alice").await.expect("created");
    let e = f.create_account("alice").await.expect_err("duplicate");
    assert_eq!(e.status(), 409);
    for bad in ["", "has space", "x\u{e9}", &"a".repeat(65)] {
        let e = f.create_account(bad).await.expect_err(bad);
        assert_eq!(e.status(), 400, "{bad:?}");
    }
    let list = f.service.list_accounts().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].two_factor, TwoFactor::Off);
    f.service.ready().await.expect("ready");
}
