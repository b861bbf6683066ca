//! API keys: creating (one or a batch), listing, showing, enabling, disabling, deleting,
//! their trusted addresses and endpoints, rotating the secret, and persisting idle
//! deactivation.

use serde_json::json;
use whitebit_auth::encoding::hex_encode;
use zeroize::Zeroizing;

use super::validate::could_be_id;
use super::{
    Caller, CodeAttempt, CreateKey, KeyService, KeyView, KeyWithSecret, ManageError, lock,
    random_bytes,
};
use wbauth_store::{KeyId, KeyRecord, KeyUpdate, NewKey, SecretBytes, StoreError};

/// Public key length in random bytes (shown as hex).
pub(super) const PUBLIC_KEY_BYTES: usize = 16;
/// API secret length in random bytes (shown as hex).
pub(super) const SECRET_BYTES: usize = 32;

/// Most keys one `create_keys` call makes.
pub(crate) const MAX_KEY_BATCH: usize = 10_000;

impl KeyService {
    /// Creates a key for an account whose 2FA is on, with a current TOTP code of it.
    pub(crate) async fn create_key(
        &self,
        request: &CreateKey,
        caller: &Caller,
    ) -> Result<KeyWithSecret, ManageError> {
        let mut created = self.create_keys(request, 1, caller).await?;
        created
            .pop()
            .ok_or_else(|| ManageError::Invalid("no key was created".to_owned()))
    }

    /// Creates `count` keys alike (1 to [`MAX_KEY_BATCH`]) with one TOTP code, in one store
    /// transaction: for operators provisioning many bots, and for load tests (window mode
    /// allows about 1,000 requests per second per key).
    pub(crate) async fn create_keys(
        &self,
        request: &CreateKey,
        count: usize,
        caller: &Caller,
    ) -> Result<Vec<KeyWithSecret>, ManageError> {
        if count == 0 || count > MAX_KEY_BATCH {
            return Err(ManageError::Invalid(format!(
                "count must be between 1 and {MAX_KEY_BATCH}"
            )));
        }
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let mut account = self.account(&request.account).await?;
        if !account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(ManageError::TwoFactorRequired {
                account: account.name,
            });
        }
        // Validate everything before the code is used up.
        let endpoints = self.check_endpoints(&request.kind, &request.endpoints)?;
        let ips = self.check_ips(&request.ips)?;
        let code = request
            .code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                ManageError::CodeRequired(
                    "A current TOTP code of the account is required to create a key (--code)."
                        .to_owned(),
                )
            })?;
        let attempt = CodeAttempt::new(code, caller, now, "key.create");
        self.check_code(&mut account, attempt).await?;

        let mut secrets = Vec::with_capacity(count);
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let public_key = hex_encode(&random_bytes(PUBLIC_KEY_BYTES)?);
            let secret = Zeroizing::new(hex_encode(&random_bytes(SECRET_BYTES)?));
            keys.push(NewKey {
                public_key,
                account_id: account.id,
                kind: request.kind.clone(),
                secret: SecretBytes::new(secret.as_bytes().to_vec()),
                ips: ips.clone(),
                endpoints: endpoints.clone(),
                created_ms: now,
            });
            secrets.push(secret);
        }
        let ids = self.store.insert_keys(keys).await?;
        let mut created = Vec::with_capacity(count);
        for (id, secret) in ids.into_iter().zip(secrets) {
            let record = self.stored_key(id).await?;
            self.cache.upsert(&record);
            if count == 1 {
                self.audit(
                    caller,
                    "key.create",
                    json!({
                        "public_key": record.public_key,
                        "account": record.account_name,
                        "kind": record.kind,
                        "ips": record.ips,
                        "endpoints": record.endpoints,
                    }),
                )
                .await;
            }
            created.push(KeyWithSecret {
                key: self.key_view(&record, now),
                secret,
            });
        }
        if count > 1 {
            self.audit(
                caller,
                "key.create",
                json!({
                    "count": count,
                    "account": account.name,
                    "kind": request.kind,
                    "ips": ips,
                    "endpoints": endpoints,
                    "first": created.first().map(|k| k.key.public_key.clone()),
                    "last": created.last().map(|k| k.key.public_key.clone()),
                }),
            )
            .await;
        }
        Ok(created)
    }

    /// Keys, all or one account's.
    pub(crate) async fn list_keys(
        &self,
        account: Option<&str>,
    ) -> Result<Vec<KeyView>, ManageError> {
        self.sweep_idle_quietly().await;
        if let Some(name) = account {
            self.account(name).await?;
        }
        let now = self.now_ms();
        let records = self.store.load_keys().await?;
        Ok(records
            .iter()
            .filter(|r| account.is_none_or(|name| r.account_name == name))
            .map(|r| self.key_view(r, now))
            .collect())
    }

    /// One key.
    pub(crate) async fn show_key(&self, public_key: &str) -> Result<KeyView, ManageError> {
        self.sweep_idle_quietly().await;
        let record = self.find_key(public_key).await?;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Enables a key: clears the disabled and idle flags and restarts the idle clock.
    pub(crate) async fn enable_key(
        &self,
        public_key: &str,
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    enabled: Some(true),
                    idle_deactivated: Some(false),
                    idle_anchor_ms: Some(now),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        lock(&self.idle_stored).remove(&record.id);
        self.audit(caller, "key.enable", key_detail(&record)).await;
        Ok(self.key_view(&record, now))
    }

    /// Disables a key (refused with row 13 from the next request on).
    pub(crate) async fn disable_key(
        &self,
        public_key: &str,
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    enabled: Some(false),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(caller, "key.disable", key_detail(&record)).await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Deletes a key (unknown from the next request on: row 12).
    pub(crate) async fn delete_key(
        &self,
        public_key: &str,
        caller: &Caller,
    ) -> Result<(), ManageError> {
        let _write = self.write.lock().await;
        let record = self.find_key(public_key).await?;
        if !self.store.delete_key(record.id).await? {
            return Err(not_found_key(public_key));
        }
        self.cache.remove(&record.public_key);
        lock(&self.idle_stored).remove(&record.id);
        self.audit(caller, "key.delete", key_detail(&record)).await;
        Ok(())
    }

    /// Replaces a key's trusted addresses (empty: any address).
    pub(crate) async fn set_ips(
        &self,
        public_key: &str,
        ips: &[String],
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let ips = self.check_ips(ips)?;
        let _write = self.write.lock().await;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    ips: Some(ips),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(
            caller,
            "key.set_ips",
            json!({"public_key": record.public_key, "account": record.account_name, "ips": record.ips}),
        )
        .await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Replaces a key's endpoint allow-list (inside its kind; empty: the whole kind).
    pub(crate) async fn set_endpoints(
        &self,
        public_key: &str,
        endpoints: &[String],
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let current = self.find_key(public_key).await?;
        let endpoints = self.check_endpoints(&current.kind, endpoints)?;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    endpoints: Some(endpoints),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(
            caller,
            "key.set_endpoints",
            json!({
                "public_key": record.public_key,
                "account": record.account_name,
                "endpoints": record.endpoints,
            }),
        )
        .await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Gives a key a new secret (shown once; the old one is refused from then on) and a fresh
    /// nonce state. Needs a current TOTP code of the owner.
    pub(crate) async fn rotate_secret(
        &self,
        public_key: &str,
        code: Option<&str>,
        caller: &Caller,
    ) -> Result<KeyWithSecret, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let old = self.find_key(public_key).await?;
        let mut account = self.account(&old.account_name).await?;
        if !account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(ManageError::TwoFactorRequired {
                account: account.name,
            });
        }
        let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            ManageError::CodeRequired(
                "A current TOTP code of the account is required to rotate a secret (--code)."
                    .to_owned(),
            )
        })?;
        let attempt = CodeAttempt::new(code, caller, now, "key.rotate_secret");
        self.check_code(&mut account, attempt).await?;

        let secret = Zeroizing::new(hex_encode(&random_bytes(SECRET_BYTES)?));
        // A new row (a new id, so a fresh nonce state: the high-water mark of the old id is
        // never lowered, `docs/design-decisions.md` 16) with the same public key, rules and state, swapped
        // in one store transaction.
        let replaced = self
            .store
            .replace_key(
                old.id,
                NewKey {
                    public_key: old.public_key.clone(),
                    account_id: old.account_id,
                    kind: old.kind.clone(),
                    secret: SecretBytes::new(secret.as_bytes().to_vec()),
                    ips: old.ips.clone(),
                    endpoints: old.endpoints.clone(),
                    created_ms: old.created_ms,
                },
                (old.enabled, old.idle_deactivated, old.idle_anchor_ms),
            )
            .await?;
        let Some(id) = replaced else {
            return Err(not_found_key(public_key));
        };
        let last_used = old
            .last_used_ms
            .into_iter()
            .chain(self.cache.get(public_key).and_then(|k| k.last_used_ms()))
            .max();
        if let Some(used) = last_used {
            self.store.touch_keys(vec![(id, used)]).await?;
        }
        let record = self.stored_key(id).await?;
        self.cache.upsert(&record);
        {
            let mut stored = lock(&self.idle_stored);
            if stored.remove(&old.id) {
                stored.insert(id);
            }
        }
        self.audit(caller, "key.rotate_secret", key_detail(&record))
            .await;
        Ok(KeyWithSecret {
            key: self.key_view(&record, now),
            secret,
        })
    }

    /// Persists the idle deactivation of every key found idle (unused for `keys.idle_days`)
    /// and not yet stored as such; audited as `key.idle_deactivate`. Returns how many.
    pub(crate) async fn sweep_idle(&self) -> Result<usize, ManageError> {
        let days = self.config.current().keys.idle_days;
        let now = self.now_ms();
        let candidates: Vec<_> = {
            let stored = lock(&self.idle_stored);
            self.cache
                .snapshot()
                .into_iter()
                .filter(|k| !stored.contains(&k.id) && k.is_idle(now, days))
                .collect()
        };
        let mut count = 0;
        for key in candidates {
            let _write = self.write.lock().await;
            // Re-check under the lock: an `enable` may have come first.
            let Some(current) = self.cache.get(&key.public_key) else {
                continue;
            };
            if current.id != key.id || !current.is_idle(self.now_ms(), days) {
                continue;
            }
            let Some(record) = self.store.get_key(key.id).await? else {
                continue;
            };
            if !record.idle_deactivated {
                self.store
                    .update_key(
                        key.id,
                        KeyUpdate {
                            idle_deactivated: Some(true),
                            ..KeyUpdate::default()
                        },
                    )
                    .await?;
                let record = self.stored_key(key.id).await?;
                self.cache.upsert(&record);
                self.audit(
                    &Caller::system(),
                    "key.idle_deactivate",
                    json!({
                        "public_key": record.public_key,
                        "account": record.account_name,
                        "idle_days": days,
                        "last_used_ms": record.last_used_ms.or(key.last_used_ms()),
                        "idle_anchor_ms": record.idle_anchor_ms,
                    }),
                )
                .await;
                count += 1;
            }
            lock(&self.idle_stored).insert(key.id);
        }
        Ok(count)
    }

    /// [`Self::sweep_idle`] before a listing; a failure only shows in the log (the listing
    /// still shows idle keys as idle).
    async fn sweep_idle_quietly(&self) {
        if let Err(e) = self.sweep_idle().await {
            eprintln!("wbauth: persisting idle keys failed: {e}");
        }
    }

    async fn stored_key(&self, id: KeyId) -> Result<KeyRecord, ManageError> {
        self.store.get_key(id).await?.ok_or_else(|| {
            ManageError::Store(StoreError::Unavailable(format!(
                "API key id {id} vanished during a change"
            )))
        })
    }

    /// A key by public key: the cache names its id (every key is in memory); a key missing
    /// there is looked for in the store.
    async fn find_key(&self, public_key: &str) -> Result<KeyRecord, ManageError> {
        if !could_be_id(public_key) {
            return Err(not_found_key(public_key));
        }
        if let Some(cached) = self.cache.get(public_key)
            && let Some(record) = self.store.get_key(cached.id).await?
        {
            return Ok(record);
        }
        self.store
            .load_keys()
            .await?
            .into_iter()
            .find(|r| r.public_key == public_key)
            .ok_or_else(|| not_found_key(public_key))
    }

    /// Applies a change to the store, then to the cache.
    async fn update(&self, public_key: &str, update: KeyUpdate) -> Result<KeyRecord, ManageError> {
        let record = self.find_key(public_key).await?;
        if !self.store.update_key(record.id, update).await? {
            return Err(not_found_key(public_key));
        }
        let record = self.stored_key(record.id).await?;
        self.cache.upsert(&record);
        Ok(record)
    }
}

fn not_found_key(public_key: &str) -> ManageError {
    let shown: String = public_key.chars().take(80).collect();
    ManageError::NotFound(format!("No API key {shown:?}."))
}

fn key_detail(record: &KeyRecord) -> serde_json::Value {
    json!({"public_key": record.public_key, "account": record.account_name, "kind": record.kind})
}
