//! Fiat Gateway partner management: the one implementation of creating, listing, showing,
//! enabling, disabling and deleting partners (Auth Key → Enc Key), as `impl KeyService`. The
//! admin API calls it (the CLI's `partners` command goes through the admin API). Like key
//! changes, every change goes to the durable store first and to the in-memory
//! [`PartnerCache`] right after, so it is in force on the very next request; every change is
//! audited, never with the Enc Key in it. The Enc Key is generated here, encrypted at rest by
//! the store, and shown once (in the answer to `create`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use whitebit_auth::encoding::hex_encode;
use zeroize::Zeroizing;

use super::validate::{check_name, could_be_id};
use super::{Caller, KeyService, ManageError, random_bytes};
use crate::state::partners::ActivePartner;
use wbauth_store::{NewPartner, PartnerRecord, SecretBytes};

/// The Auth Key's prefix (followed by [`AUTH_KEY_BYTES`] random bytes in hex).
const AUTH_KEY_PREFIX: &str = "auth-";
/// Random bytes in an Auth Key (20 hex characters).
const AUTH_KEY_BYTES: usize = 10;
/// The Enc Key's prefix (followed by [`ENC_KEY_BYTES`] random bytes in hex).
const ENC_KEY_PREFIX: &str = "enc-";
/// Random bytes in an Enc Key (32 hex characters).
const ENC_KEY_BYTES: usize = 16;
/// Longest partner name.
const MAX_PARTNER_NAME: usize = 64;

/// A partner's state as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerState {
    /// Its tokens are accepted.
    Active,
    /// Disabled by an operator: treated as unknown.
    Disabled,
}

/// A partner as the admin API shows it (never its Enc Key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerView {
    /// The Auth Key (`x-auth-key`, the `key` claim).
    pub auth_key: String,
    /// Unique name (for operators; upstreams receive the Auth Key as `X-Auth-Partner`).
    pub name: String,
    /// Active or disabled.
    pub state: PartnerState,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Created at (Unix ms).
    pub created_ms: u64,
}

impl PartnerView {
    fn of(record: &PartnerRecord) -> Self {
        Self {
            auth_key: record.auth_key.clone(),
            name: record.name.clone(),
            state: if record.enabled {
                PartnerState::Active
            } else {
                PartnerState::Disabled
            },
            enabled: record.enabled,
            created_ms: record.created_ms,
        }
    }
}

/// A new partner with its Enc Key, shown once. `Debug` hides the Enc Key; it is wiped from
/// memory when dropped.
pub(crate) struct PartnerWithEncKey {
    pub(crate) partner: PartnerView,
    enc_key: Zeroizing<String>,
}

impl PartnerWithEncKey {
    /// The Enc Key. Show it once; never log it.
    #[must_use]
    pub(crate) fn expose_enc_key(&self) -> &str {
        &self.enc_key
    }
}

impl std::fmt::Debug for PartnerWithEncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerWithEncKey")
            .field("partner", &self.partner)
            .field("enc_key", &"<redacted>")
            .finish()
    }
}

/// Checks a partner name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
fn check_partner_name(name: &str) -> Result<(), ManageError> {
    check_name("partner", name, MAX_PARTNER_NAME)
}

fn not_found_partner(auth_key: &str) -> ManageError {
    let shown: String = auth_key.chars().take(80).collect();
    ManageError::NotFound(format!("No partner with Auth Key {shown:?}."))
}

fn partner_detail(record: &PartnerRecord) -> serde_json::Value {
    json!({"auth_key": record.auth_key, "name": record.name})
}

/// `PREFIX` + `bytes` random bytes in hex, wiped when dropped.
fn random_token(prefix: &str, bytes: usize) -> Result<Zeroizing<String>, ManageError> {
    let buf = random_bytes(bytes)?;
    let hex = Zeroizing::new(hex_encode(&buf));
    let mut out = Zeroizing::new(String::with_capacity(prefix.len() + hex.len()));
    out.push_str(prefix);
    out.push_str(&hex);
    Ok(out)
}

impl KeyService {
    /// Creates a partner (enabled) with a new Auth Key and Enc Key. The Enc Key is in the
    /// answer and nowhere else: it is never shown again.
    pub(crate) async fn create_partner(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<PartnerWithEncKey, ManageError> {
        check_partner_name(name)?;
        let auth_key = random_token(AUTH_KEY_PREFIX, AUTH_KEY_BYTES)?;
        let enc_key = random_token(ENC_KEY_PREFIX, ENC_KEY_BYTES)?;
        self.insert_partner(
            name,
            auth_key.to_string(),
            enc_key,
            caller,
            "partner.create",
        )
        .await
    }

    /// Imports a partner whose Auth Key and Enc Key were issued elsewhere (e.g. moved from
    /// another Fiat Gateway): the same checks, store, cache and audit as
    /// [`KeyService::create_partner`].
    pub(crate) async fn import_partner(
        &self,
        name: &str,
        auth_key: &str,
        enc_key: Zeroizing<String>,
        caller: &Caller,
    ) -> Result<PartnerWithEncKey, ManageError> {
        check_partner_name(name)?;
        if auth_key.is_empty()
            || auth_key.len() > 128
            || !auth_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ManageError::Invalid(
                "the Auth Key must be 1 to 128 visible ASCII characters".to_owned(),
            ));
        }
        if enc_key.is_empty() || enc_key.len() > 256 {
            return Err(ManageError::Invalid(
                "the Enc Key must be 1 to 256 bytes".to_owned(),
            ));
        }
        self.insert_partner(name, auth_key.to_owned(), enc_key, caller, "partner.import")
            .await
    }

    async fn insert_partner(
        &self,
        name: &str,
        auth_key: String,
        enc_key: Zeroizing<String>,
        caller: &Caller,
        action: &str,
    ) -> Result<PartnerWithEncKey, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let id = self
            .store
            .insert_partner(NewPartner {
                name: name.to_owned(),
                auth_key,
                enc_key: SecretBytes::new(enc_key.as_bytes().to_vec()),
                created_ms: now,
            })
            .await?;
        let record = self.stored_partner(id).await?;
        self.partners.upsert(ActivePartner::from_record(&record));
        self.audit(caller, action, partner_detail(&record)).await;
        Ok(PartnerWithEncKey {
            partner: PartnerView::of(&record),
            enc_key,
        })
    }

    /// Every partner (never an Enc Key).
    pub(crate) async fn list_partners(&self) -> Result<Vec<PartnerView>, ManageError> {
        let records = self.store.load_partners().await?;
        Ok(records.iter().map(PartnerView::of).collect())
    }

    /// One partner by Auth Key.
    pub(crate) async fn show_partner(&self, auth_key: &str) -> Result<PartnerView, ManageError> {
        Ok(PartnerView::of(&self.find_partner(auth_key).await?))
    }

    /// Enables a partner: its tokens are accepted from the next request on.
    pub(crate) async fn enable_partner(
        &self,
        auth_key: &str,
        caller: &Caller,
    ) -> Result<PartnerView, ManageError> {
        self.set_partner_enabled(auth_key, true, caller).await
    }

    /// Disables a partner: treated as unknown from the next request on.
    pub(crate) async fn disable_partner(
        &self,
        auth_key: &str,
        caller: &Caller,
    ) -> Result<PartnerView, ManageError> {
        self.set_partner_enabled(auth_key, false, caller).await
    }

    /// Deletes a partner (unknown from the next request on).
    pub(crate) async fn delete_partner(
        &self,
        auth_key: &str,
        caller: &Caller,
    ) -> Result<(), ManageError> {
        let _write = self.write.lock().await;
        let record = self.find_partner(auth_key).await?;
        if !self.store.delete_partner(record.id).await? {
            return Err(not_found_partner(auth_key));
        }
        self.partners.remove(&record.auth_key);
        self.audit(caller, "partner.delete", partner_detail(&record))
            .await;
        Ok(())
    }

    async fn set_partner_enabled(
        &self,
        auth_key: &str,
        enabled: bool,
        caller: &Caller,
    ) -> Result<PartnerView, ManageError> {
        let _write = self.write.lock().await;
        let record = self.find_partner(auth_key).await?;
        if !self
            .store
            .update_partner_enabled(record.id, enabled)
            .await?
        {
            return Err(not_found_partner(auth_key));
        }
        let record = self.stored_partner(record.id).await?;
        self.partners.upsert(ActivePartner::from_record(&record));
        let action = if enabled {
            "partner.enable"
        } else {
            "partner.disable"
        };
        self.audit(caller, action, partner_detail(&record)).await;
        Ok(PartnerView::of(&record))
    }

    /// A partner by Auth Key, from the store (partners are few; the cache holds no names of
    /// disabled ones for the request path).
    async fn find_partner(&self, auth_key: &str) -> Result<PartnerRecord, ManageError> {
        if !could_be_id(auth_key) {
            return Err(not_found_partner(auth_key));
        }
        self.store
            .load_partners()
            .await?
            .into_iter()
            .find(|p| p.auth_key == auth_key)
            .ok_or_else(|| not_found_partner(auth_key))
    }

    async fn stored_partner(&self, id: i64) -> Result<PartnerRecord, ManageError> {
        self.store
            .load_partners()
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| {
                ManageError::Store(wbauth_store::StoreError::Unavailable(format!(
                    "partner id {id} vanished during a change"
                )))
            })
    }
}
