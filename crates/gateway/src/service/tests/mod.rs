//! Unit tests of the management service, one file per role, sharing a fixture.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::clock::{Clock as _, ManualClock};
use crate::config::{Config, KindConfig};
use crate::service::partners::PartnerWithEncKey;
use crate::service::totp;
use crate::state::keys::{DAY_MS, KeyCache};
use crate::state::partners::PartnerCache;
use wbauth_store::{SqliteKeyStore, load_or_create_master_key};

mod accounts;
mod error;
mod keys;
mod partners;
mod passwords;
mod two_factor;

pub(super) use passwords::Gate;

const T0: u64 = 1_700_000_000_000;
const STEP_MS: u64 = 30_000;

struct Fixture {
    service: KeyService,
    cache: Arc<KeyCache>,
    partners: Arc<PartnerCache>,
    store: Arc<SqliteKeyStore>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

/// What the admin does, through the service.
impl Fixture {
    async fn create_account(&self, name: &str) -> Result<AccountView, ManageError> {
        self.service.create_account(name, &admin()).await
    }

    async fn create_key(&self, request: &CreateKey) -> Result<KeyWithSecret, ManageError> {
        self.service.create_key(request, &admin()).await
    }

    async fn create_partner(&self, name: &str) -> Result<PartnerWithEncKey, ManageError> {
        self.service.create_partner(name, &admin()).await
    }
}

fn config() -> Config {
    Config {
        kinds: vec![
            KindConfig {
                name: "trade".into(),
                paths: vec!["/api/v4/trade-account/*".into(), "/api/v4/order/*".into()],
            },
            KindConfig {
                name: "main".into(),
                paths: vec!["/api/v4/main-account/balance".into()],
            },
        ],
        ..Config::default()
    }
}

async fn open(dir: &Path) -> Arc<SqliteKeyStore> {
    let master = load_or_create_master_key(dir, Some(&"ab".repeat(32))).expect("master key");
    Arc::new(
        SqliteKeyStore::open(&dir.join("keys.sqlite"), master)
            .await
            .expect("store"),
    )
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let cache = Arc::new(KeyCache::default());
    // What the gateway builds at start.
    let partners = Arc::new(PartnerCache::from_records(
        &store.load_partners().await.expect("partners"),
    ));
    let clock = ManualClock::at(T0);
    let service = KeyService::new(
        store.clone(),
        cache.clone(),
        partners.clone(),
        crate::config::SharedConfig::new(Arc::new(config())),
        Arc::new(clock.clone()),
    );
    Fixture {
        service,
        cache,
        partners,
        store,
        clock,
        _dir: dir,
    }
}

fn admin() -> Caller {
    Caller::new("admin@127.0.0.1", Some(IpAddr::from([127, 0, 0, 1])))
}

fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

fn code(secret: &[u8], now: u64) -> String {
    format!("{:06}", totp::code_at_step(secret, totp::step_of(now)))
}

fn wrong_code(secret: &[u8], now: u64) -> String {
    let step = totp::step_of(now);
    let valid: Vec<u32> = (step - 1..=step + 1)
        .map(|s| totp::code_at_step(secret, s))
        .collect();
    let mut candidate = (valid[1] + 1) % 1_000_000;
    while valid.contains(&candidate) {
        candidate = (candidate + 1) % 1_000_000;
    }
    format!("{candidate:06}")
}

/// Creates an account with 2FA on; returns its TOTP secret. Leaves the clock one step on.
async fn account_with_2fa(f: &Fixture, name: &str) -> Vec<u8> {
    f.create_account(name).await.expect("account");
    let enrolment = f
        .service
        .enrol_2fa(name, None, false, &admin())
        .await
        .expect("enrol");
    let secret = base32_decode(enrolment.expose_secret_base32());
    assert!(
        enrolment
            .expose_uri()
            .contains(enrolment.expose_secret_base32())
    );
    let view = f
        .service
        .confirm_2fa(name, &code(&secret, f.clock.now_ms()), &admin())
        .await
        .expect("confirm");
    assert_eq!(view.two_factor, TwoFactor::On);
    f.clock.advance(STEP_MS);
    secret
}

fn create(account: &str, kind: &str, code: &str) -> CreateKey {
    CreateKey {
        account: account.into(),
        kind: kind.into(),
        code: Some(code.into()),
        ..CreateKey::default()
    }
}
