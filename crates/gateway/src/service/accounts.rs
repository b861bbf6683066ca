//! Accounts: creating, listing and showing them, and finding one by name.

use std::collections::HashMap;

use serde_json::json;

use super::views::account_view;
use super::{AccountView, Caller, KeyService, ManageError, check_account_name};
use wbauth_store::AccountRecord;

impl KeyService {
    /// Creates an account (2FA off).
    pub(crate) async fn create_account(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<AccountView, ManageError> {
        check_account_name(name)?;
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let account = self.store.insert_account(name.to_owned(), now).await?;
        self.audit(caller, "account.create", json!({"account": name}))
            .await;
        Ok(self.account_view(&account, now))
    }

    /// Every account.
    pub(crate) async fn list_accounts(&self) -> Result<Vec<AccountView>, ManageError> {
        let now = self.now_ms();
        let accounts = self.store.list_accounts().await?;
        let mut keys: HashMap<i64, usize> = HashMap::new();
        for key in self.cache.snapshot() {
            *keys.entry(key.account_id).or_default() += 1;
        }
        Ok(accounts
            .iter()
            .map(|a| account_view(a, now, keys.get(&a.id).copied().unwrap_or(0)))
            .collect())
    }

    /// One account.
    pub(crate) async fn show_account(&self, name: &str) -> Result<AccountView, ManageError> {
        let account = self.account(name).await?;
        Ok(self.account_view(&account, self.now_ms()))
    }

    pub(super) async fn account(&self, name: &str) -> Result<AccountRecord, ManageError> {
        if check_account_name(name).is_err() {
            return Err(ManageError::NotFound(format!("No account named {name:?}.")));
        }
        self.store
            .get_account(name.to_owned())
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("No account named {name:?}.")))
    }
}
