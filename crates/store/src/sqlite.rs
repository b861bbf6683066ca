//! The embedded default key store: accounts, API keys and the audit log in one SQLite file
//! (through sqlx), with every secret encrypted at rest under the master key
//! (`docs/design-decisions.md` 18).
//!
//! Start-up, in order:
//!
//! 1. [`load_or_create_master_key`] — `WBAUTH_MASTER_KEY` wins; otherwise `master.key` in the
//!    data directory is read, or generated (mode 0600) on first start.
//! 2. [`SqliteKeyStore::open`] — creates the file if missing, applies the migrations in
//!    `migrations/sqlite/`, and checks the master key against the key-check value stored on
//!    first open: a wrong key is [`StoreError::WrongMasterKey`], never garbage secrets.
//! 3. [`KeyStore::load_keys`] — every key, decrypted, for the in-memory key table.
//!
//! Encrypted values (API secrets, TOTP secrets, the key-check value) are stored as
//! `nonce (24 random bytes) || XChaCha20-Poly1305 ciphertext || tag`; the associated data names
//! the row (`api_key:<public key>`, `totp:<account name>`, `partner:<auth key>`), so a value moved to another row no
//! longer decrypts.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chacha20poly1305::{AeadInOut as _, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use zeroize::{Zeroize as _, Zeroizing};

use super::rows::{
    AccountRow, AuditRow, KeyRow, PartnerRow, account_select, audit_select, convert, key_select,
    partner_select,
};
use super::{
    AccountRecord, AuditEntry, BoxFuture, KeyId, KeyRecord, KeyStore, KeyUpdate, NewKey,
    NewPartner, PartnerRecord, SecretBytes, StoreError,
};

/// The environment variable that holds the master key (64 hex characters).
pub const MASTER_KEY_ENV: &str = "WBAUTH_MASTER_KEY";

/// The master key's file name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The key store's file name inside the data directory (a suggestion for callers; [`SqliteKeyStore::open`]
/// takes any path).
pub const DB_FILE_NAME: &str = "keys.sqlite";

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool (writes are rare; reads at start and from the admin API).
const MAX_CONNECTIONS: u32 = 4;

/// XChaCha20-Poly1305 nonce length.
const NONCE_LEN: usize = 24;

/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// `meta` row that holds the key-check value.
pub(super) const KEY_CHECK_NAME: &str = "key_check";

/// Associated data of the key-check value.
pub(super) const KEY_CHECK_AAD: &[u8] = b"meta:key_check";

/// The constant encrypted as the key-check value.
pub(super) const KEY_CHECK_PLAINTEXT: &[u8] = b"wbauth key store master key check v1";

/// Versioned schema migrations (`crates/store/migrations/sqlite/NNNN_name.sql`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

// ---------------------------------------------------------------------------------------------
// Master key
// ---------------------------------------------------------------------------------------------

/// Where a master key comes from.
pub enum MasterKeySource {
    /// The value of `WBAUTH_MASTER_KEY` (wiped from memory when dropped, never printed).
    Env(String),
    /// A key file (normally `master.key` in the data directory); it must be private (0600).
    File(PathBuf),
}

impl Drop for MasterKeySource {
    fn drop(&mut self) {
        if let Self::Env(value) = self {
            value.zeroize();
        }
    }
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(_) => f.write_str("Env(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The 32-byte key that encrypts every secret at rest. Wiped from memory when dropped; its
/// `Debug` output never shows it.
pub struct MasterKey {
    /// The cipher keyed with the master key (zeroizes its key on drop).
    cipher: XChaCha20Poly1305,
    /// Where the key came from (for the start-up log; never the key).
    origin: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

impl MasterKey {
    /// Reads a master key (64 hex characters, surrounding whitespace ignored) from `source`.
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`] naming the source when the value is not 64 hex characters;
    /// [`StoreError::Io`] when the key file cannot be read, does not exist, or is accessible by
    /// group or others.
    pub fn from_source(source: &MasterKeySource) -> Result<Self, StoreError> {
        match source {
            MasterKeySource::Env(value) => {
                let bytes = parse_hex_key(value.as_bytes(), MASTER_KEY_ENV)?;
                Self::from_bytes(&bytes, MASTER_KEY_ENV.to_owned())
            }
            MasterKeySource::File(path) => match read_key_file(path)? {
                Some(key) => Ok(key),
                None => Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("master key file {} does not exist", path.display()),
                ))),
            },
        }
    }

    /// Where the key came from: `WBAUTH_MASTER_KEY`, a file, or generated into a file (never
    /// the key itself; fit for the start-up log).
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn from_bytes(bytes: &[u8; 32], origin: String) -> Result<Self, StoreError> {
        let cipher = XChaCha20Poly1305::new_from_slice(bytes)
            .map_err(|_| StoreError::Corrupt("master key has the wrong length".to_owned()))?;
        Ok(Self { cipher, origin })
    }

    /// Encrypts `plaintext` bound to `aad`: `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = XNonce::default();
        fill_random(nonce.as_mut_slice())?;
        // Reserved up front so the buffer never reallocates (no stray plaintext copies), and
        // wiped if encryption fails half way.
        let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).unwrap_or_default();
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, aad, body.into())
            .map_err(|_| StoreError::Corrupt("a value is too long to encrypt".to_owned()))?;
        out.extend_from_slice(tag.as_slice());
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypts a value made by [`Self::seal`] with the same `aad`; `None` when it does not
    /// authenticate (wrong key, wrong row, damaged).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<SecretBytes> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag)
            .ok()?;
        Some(SecretBytes::new(std::mem::take(&mut *buffer)))
    }
}

/// The master key for the embedded store: `env_value` (the value of `WBAUTH_MASTER_KEY`) wins;
/// otherwise `data_dir/master.key` is read or, when absent, generated (the data directory is
/// created with mode 0700 when missing, the file with 0600).
///
/// # Errors
/// [`StoreError::WrongMasterKey`] naming the source when a key is not 64 hex characters;
/// [`StoreError::Io`] when the key file is accessible by group or others, or cannot be read or
/// written; [`StoreError::Unavailable`] when the system random generator fails.
pub fn load_or_create_master_key(
    data_dir: &Path,
    env_value: Option<&str>,
) -> Result<MasterKey, StoreError> {
    if let Some(value) = env_value {
        return MasterKey::from_source(&MasterKeySource::Env(value.to_owned()));
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if let Some(key) = read_key_file(&path)? {
        return Ok(key);
    }
    create_key_file(data_dir, &path)
}

/// Reads a key file; `Ok(None)` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, StoreError> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e, &format!("cannot open {}", path.display()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| io_error(e, &format!("cannot inspect {}", path.display())))?;
    if !meta.is_file() {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("master key file {} is not a regular file", path.display()),
        )));
    }
    check_private(&meta, path)?;

    // A fixed buffer: nothing is reallocated, and everything read is wiped.
    let mut buffer = Zeroizing::new([0u8; 256]);
    let mut len = 0;
    loop {
        let free = buffer.get_mut(len..).unwrap_or_default();
        if free.is_empty() {
            return Err(malformed_key(
                &path.display().to_string(),
                "the file is far longer",
            ));
        }
        match file.read(free) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, &format!("cannot read {}", path.display()))),
        }
    }
    let text = buffer.get(..len).unwrap_or_default();
    let bytes = parse_hex_key(text, &path.display().to_string())?;
    MasterKey::from_bytes(&bytes, format!("file {}", path.display())).map(Some)
}

/// Generates a key into `path` without ever replacing an existing file.
fn create_key_file(data_dir: &Path, path: &Path) -> Result<MasterKey, StoreError> {
    create_private_dir(data_dir)?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(&mut bytes[..])?;
    let hex = encode_hex(&bytes);

    let tmp = data_dir.join(format!(".{MASTER_KEY_FILE}.tmp.{}", std::process::id()));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e, &format!("cannot remove {}", tmp.display()))),
    }
    let written = (|| {
        let mut file = create_private_file(&tmp)?;
        file.write_all(hex.as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(e, &format!("cannot write {}", tmp.display())));
    }
    // `hard_link` never replaces an existing file: if another process created the key file
    // meanwhile, its key is the one in use.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return read_key_file(path)?.ok_or_else(|| {
                StoreError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("master key file {} vanished", path.display()),
                ))
            });
        }
        Err(e) => return Err(io_error(e, &format!("cannot create {}", path.display()))),
    }
    sync_dir(data_dir)?;
    MasterKey::from_bytes(&bytes, format!("generated into {}", path.display()))
}

/// Parses 64 hex characters (surrounding ASCII whitespace ignored). Errors name `source`, never
/// the value.
fn parse_hex_key(text: &[u8], source: &str) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let text = text.trim_ascii();
    if text.len() != 64 {
        return Err(malformed_key(
            source,
            &format!("found {} characters", text.len()),
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    if !whitebit_auth::encoding::hex_decode_into(text, &mut *key) {
        return Err(malformed_key(
            source,
            "found a character that is not a hex digit",
        ));
    }
    Ok(key)
}

/// Lower-case hex and a newline, in a buffer that is wiped when dropped.
fn encode_hex(bytes: &[u8; 32]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(65));
    whitebit_auth::encoding::hex_encode_into(bytes, &mut out);
    out.push('\n');
    out
}

fn malformed_key(source: &str, reason: &str) -> StoreError {
    StoreError::WrongMasterKey(format!(
        "{source}: a master key must be 64 hex characters (32 bytes); {reason}"
    ))
}

fn fill_random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| {
        StoreError::Unavailable(format!("the system random number generator failed: {e}"))
    })
}

fn io_error(e: io::Error, context: &str) -> StoreError {
    StoreError::Io(io::Error::new(e.kind(), format!("{context}: {e}")))
}

#[cfg(unix)]
fn check_private(meta: &fs::Metadata, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "master key file {path} is accessible by group or others (mode {mode:04o}); \
                 refusing to use it: run `chmod 600 {path}`",
                path = path.display()
            ),
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_meta: &fs::Metadata, _path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error(e, &format!("cannot create directory {}", dir.display())))
}

/// Creates a new file with mode 0600 (fails when it exists).
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(e, &format!("cannot sync directory {}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

/// The embedded key store: one SQLite file (WAL, `synchronous=FULL`), secrets encrypted under
/// the [`MasterKey`].
pub struct SqliteKeyStore {
    pool: SqlitePool,
    master: MasterKey,
}

impl std::fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeyStore")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl SqliteKeyStore {
    /// The console's tables over this store's pool.
    fn console(&self) -> super::console_sql::ConsoleSql<'_, sqlx::Sqlite> {
        super::console_sql::ConsoleSql {
            pool: &self.pool,
            db_error,
        }
    }

    /// Opens (creating when missing, mode 0600, parent directory 0700) the store at `path`,
    /// brings its schema up to date and checks `master` against the stored key-check value
    /// (written on first open).
    ///
    /// # Errors
    /// [`StoreError::WrongMasterKey`] when `master` is not the key this store was created with;
    /// [`StoreError::Corrupt`] when the schema is newer than this version or damaged;
    /// [`StoreError::Io`]/[`StoreError::Unavailable`] when the file cannot be opened.
    pub async fn open(path: &Path, master: MasterKey) -> Result<Self, StoreError> {
        prepare_db_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&format!("cannot open the key store {}", path.display()), e))?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Corrupt(format!(
                "cannot migrate the key store {}: {e}",
                path.display()
            ))
        })?;
        let store = Self { pool, master };
        if let Err(e) = store.check_master_key().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Closes every connection (checkpointing the WAL). Calls after this fail with
    /// [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes the key-check value on first open, verifies it on every later one.
    async fn check_master_key(&self) -> Result<(), StoreError> {
        let context = "cannot check the master key";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(context, e))?;
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT v FROM meta WHERE k = ?1")
            .bind(KEY_CHECK_NAME)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        match stored {
            Some(sealed) => {
                let matches = self
                    .master
                    .open(KEY_CHECK_AAD, &sealed)
                    .is_some_and(|plain| plain.expose() == KEY_CHECK_PLAINTEXT);
                if !matches {
                    return Err(StoreError::WrongMasterKey(format!(
                        "the master key does not match this data directory (its key-check value \
                         does not decrypt); start with the master key the store was created with \
                         (master key from {})",
                        self.master.origin()
                    )));
                }
                tx.rollback().await.map_err(|e| db_error(context, e))?;
            }
            None => {
                let sealed = self.master.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)?;
                sqlx::query("INSERT INTO meta (k, v) VALUES (?1, ?2)")
                    .bind(KEY_CHECK_NAME)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error(context, e))?;
                tx.commit().await.map_err(|e| db_error(context, e))?;
            }
        }
        Ok(())
    }

    async fn do_load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(concat!(key_select!(), " ORDER BY k.id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot load the API keys", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_get_key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(None);
        };
        let row: Option<KeyRow> = sqlx::query_as(concat!(key_select!(), " WHERE k.id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error("cannot read an API key", e))?;
        row.map(|row| row.into_record(&self.master)).transpose()
    }

    async fn do_insert_key(&self, key: NewKey) -> Result<KeyId, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_error("cannot insert an API key", e))?;
        let anchor = key.created_ms;
        self.insert_key_row(&mut conn, &key, (true, false, anchor))
            .await
    }

    async fn do_insert_keys(&self, keys: Vec<NewKey>) -> Result<Vec<KeyId>, StoreError> {
        let context = "cannot insert API keys";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(context, e))?;
        let mut ids = Vec::with_capacity(keys.len());
        for key in &keys {
            // Dropping the transaction on an error rolls every insert back.
            ids.push(
                self.insert_key_row(&mut tx, key, (true, false, key.created_ms))
                    .await?,
            );
        }
        tx.commit().await.map_err(|e| db_error(context, e))?;
        Ok(ids)
    }

    /// One INSERT of an API key row with (enabled, idle_deactivated, idle_anchor_ms).
    async fn insert_key_row(
        &self,
        conn: &mut sqlx::SqliteConnection,
        key: &NewKey,
        (enabled, idle, anchor): (bool, bool, u64),
    ) -> Result<KeyId, StoreError> {
        let sealed = self
            .master
            .seal(&api_key_aad(&key.public_key), key.secret.expose())?;
        let created = to_sql_i64(key.created_ms, "created_ms")?;
        let anchor = to_sql_i64(anchor, "idle_anchor_ms")?;
        let result = sqlx::query(
            "INSERT INTO api_keys (public_key, account_id, kind, secret, enabled, \
             idle_deactivated, ips, endpoints, created_ms, idle_anchor_ms, last_used_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
        )
        .bind(&key.public_key)
        .bind(key.account_id)
        .bind(&key.kind)
        .bind(sealed)
        .bind(enabled)
        .bind(idle)
        .bind(json_text(&key.ips)?)
        .bind(json_text(&key.endpoints)?)
        .bind(created)
        .bind(anchor)
        .execute(&mut *conn)
        .await;
        match result {
            Ok(done) => from_sql_u64(done.last_insert_rowid(), "api_keys.id"),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!(
                    "an API key with public key {} already exists",
                    key.public_key
                )))
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(
                StoreError::Conflict(format!("account id {} does not exist", key.account_id)),
            ),
            Err(e) => Err(db_error("cannot insert an API key", e)),
        }
    }

    async fn do_replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> Result<Option<KeyId>, StoreError> {
        let Some(old) = key_id_to_sql(old) else {
            return Ok(None);
        };
        let context = "cannot replace an API key";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(context, e))?;
        let deleted = sqlx::query("DELETE FROM api_keys WHERE id = ?1")
            .bind(old)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        // Dropping the transaction on an error rolls the delete back.
        let id = self.insert_key_row(&mut tx, &key, state).await?;
        tx.commit().await.map_err(|e| db_error(context, e))?;
        Ok(Some(id))
    }

    async fn do_update_key(&self, id: KeyId, update: KeyUpdate) -> Result<bool, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(false);
        };
        let context = "cannot update an API key";
        let ips = update.ips.as_deref().map(json_text).transpose()?;
        let endpoints = update.endpoints.as_deref().map(json_text).transpose()?;
        let anchor = update
            .idle_anchor_ms
            .map(|v| to_sql_i64(v, "idle_anchor_ms"))
            .transpose()?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(context, e))?;
        // The public key is the secret's associated data.
        let public_key: Option<String> =
            sqlx::query_scalar("SELECT public_key FROM api_keys WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db_error(context, e))?;
        let Some(public_key) = public_key else {
            tx.rollback().await.map_err(|e| db_error(context, e))?;
            return Ok(false);
        };
        let sealed = match &update.secret {
            Some(secret) => Some(
                self.master
                    .seal(&api_key_aad(&public_key), secret.expose())?,
            ),
            None => None,
        };
        let done = sqlx::query(
            "UPDATE api_keys SET \
             enabled = COALESCE(?1, enabled), \
             idle_deactivated = COALESCE(?2, idle_deactivated), \
             idle_anchor_ms = COALESCE(?3, idle_anchor_ms), \
             ips = COALESCE(?4, ips), \
             endpoints = COALESCE(?5, endpoints), \
             secret = COALESCE(?6, secret) \
             WHERE id = ?7",
        )
        .bind(update.enabled)
        .bind(update.idle_deactivated)
        .bind(anchor)
        .bind(ips)
        .bind(endpoints)
        .bind(sealed)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(context, e))?;
        tx.commit().await.map_err(|e| db_error(context, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_delete_key(&self, id: KeyId) -> Result<bool, StoreError> {
        let Some(id) = key_id_to_sql(id) else {
            return Ok(false);
        };
        let done = sqlx::query("DELETE FROM api_keys WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("cannot delete an API key", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_touch_keys(&self, used: Vec<(KeyId, u64)>) -> Result<(), StoreError> {
        let mut batch = Vec::with_capacity(used.len());
        for (id, at_ms) in used {
            if let Some(id) = key_id_to_sql(id) {
                batch.push((id, to_sql_i64(at_ms, "last_used_ms")?));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let context = "cannot record key use";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(context, e))?;
        for (id, at_ms) in batch {
            sqlx::query(
                "UPDATE api_keys SET last_used_ms = ?1 \
                 WHERE id = ?2 AND (last_used_ms IS NULL OR last_used_ms < ?1)",
            )
            .bind(at_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        }
        tx.commit().await.map_err(|e| db_error(context, e))
    }

    async fn do_insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> Result<AccountRecord, StoreError> {
        let created = to_sql_i64(created_ms, "created_ms")?;
        let result = sqlx::query(
            "INSERT INTO accounts (name, created_ms, totp_secret, totp_confirmed, \
             totp_last_step, failed_attempts, locked_until_ms) \
             VALUES (?1, ?2, NULL, 0, NULL, 0, NULL)",
        )
        .bind(&name)
        .bind(created)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(AccountRecord {
                id: done.last_insert_rowid(),
                name,
                created_ms,
                totp: None,
                failed_attempts: 0,
                locked_until_ms: None,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("an account named {name:?} already exists"),
            )),
            Err(e) => Err(db_error("cannot insert an account", e)),
        }
    }

    async fn do_get_account(&self, name: String) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<AccountRow> =
            sqlx::query_as(concat!(account_select!(), " WHERE name = ?1"))
                .bind(&name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error("cannot read an account", e))?;
        row.map(|row| row.into_record(&self.master)).transpose()
    }

    async fn do_list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(concat!(account_select!(), " ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot list the accounts", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_update_account(&self, account: AccountRecord) -> Result<bool, StoreError> {
        let sealed = match &account.totp {
            Some(totp) => Some(
                self.master
                    .seal(&totp_aad(&account.name), totp.secret.0.expose())?,
            ),
            None => None,
        };
        let confirmed = account.totp.as_ref().is_some_and(|t| t.confirmed);
        let last_step = account
            .totp
            .as_ref()
            .and_then(|t| t.last_step)
            .map(|v| to_sql_i64(v, "totp_last_step"))
            .transpose()?;
        let locked = account
            .locked_until_ms
            .map(|v| to_sql_i64(v, "locked_until_ms"))
            .transpose()?;
        // The name is the TOTP secret's associated data: it must be this row's name.
        let done = sqlx::query(
            "UPDATE accounts SET totp_secret = ?1, totp_confirmed = ?2, totp_last_step = ?3, \
             failed_attempts = ?4, locked_until_ms = ?5 WHERE id = ?6 AND name = ?7",
        )
        .bind(sealed)
        .bind(confirmed)
        .bind(last_step)
        .bind(i64::from(account.failed_attempts))
        .bind(locked)
        .bind(account.id)
        .bind(&account.name)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("cannot update an account", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_load_partners(&self) -> Result<Vec<PartnerRecord>, StoreError> {
        let rows: Vec<PartnerRow> = sqlx::query_as(concat!(partner_select!(), " ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("cannot load the partners", e))?;
        convert(rows, |row| row.into_record(&self.master))
    }

    async fn do_insert_partner(&self, partner: NewPartner) -> Result<i64, StoreError> {
        let sealed = self
            .master
            .seal(&partner_aad(&partner.auth_key), partner.enc_key.expose())?;
        let created = to_sql_i64(partner.created_ms, "created_ms")?;
        let result = sqlx::query(
            "INSERT INTO partners (name, auth_key, enc_key, enabled, created_ms) \
             VALUES (?1, ?2, ?3, 1, ?4)",
        )
        .bind(&partner.name)
        .bind(&partner.auth_key)
        .bind(sealed)
        .bind(created)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(done.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let message = e.message();
                Err(StoreError::Conflict(if message.contains("partners.name") {
                    format!("a partner named {:?} already exists", partner.name)
                } else {
                    format!(
                        "a partner with Auth Key {} already exists",
                        partner.auth_key
                    )
                }))
            }
            Err(e) => Err(db_error("cannot insert a partner", e)),
        }
    }

    async fn do_update_partner_enabled(&self, id: i64, enabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE partners SET enabled = ?1 WHERE id = ?2")
            .bind(enabled)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("cannot update a partner", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_delete_partner(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM partners WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("cannot delete a partner", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn do_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at_ms, actor, action, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(to_sql_i64(entry.at_ms, "at_ms")?)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.detail)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("cannot append to the audit log", e))?;
        Ok(())
    }

    async fn do_recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> =
            sqlx::query_as(concat!(audit_select!(), " ORDER BY id DESC LIMIT ?1"))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("cannot read the audit log", e))?;
        convert(rows, AuditRow::into_entry)
    }
}

impl KeyStore for SqliteKeyStore {
    fn load_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>> {
        Box::pin(self.do_load_keys())
    }

    fn get_key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<KeyRecord>, StoreError>> {
        Box::pin(self.do_get_key(id))
    }

    fn insert_key(&self, key: NewKey) -> BoxFuture<'_, Result<KeyId, StoreError>> {
        Box::pin(self.do_insert_key(key))
    }

    fn insert_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Vec<KeyId>, StoreError>> {
        Box::pin(self.do_insert_keys(keys))
    }

    fn update_key(&self, id: KeyId, update: KeyUpdate) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.do_update_key(id, update))
    }

    fn delete_key(&self, id: KeyId) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.do_delete_key(id))
    }

    fn replace_key(
        &self,
        old: KeyId,
        key: NewKey,
        state: (bool, bool, u64),
    ) -> BoxFuture<'_, Result<Option<KeyId>, StoreError>> {
        Box::pin(self.do_replace_key(old, key, state))
    }

    fn touch_keys(&self, used: Vec<(KeyId, u64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.do_touch_keys(used))
    }

    fn insert_account(
        &self,
        name: String,
        created_ms: u64,
    ) -> BoxFuture<'_, Result<AccountRecord, StoreError>> {
        Box::pin(self.do_insert_account(name, created_ms))
    }

    fn get_account(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<Option<AccountRecord>, StoreError>> {
        Box::pin(self.do_get_account(name))
    }

    fn list_accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRecord>, StoreError>> {
        Box::pin(self.do_list_accounts())
    }

    fn update_account(&self, account: AccountRecord) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.do_update_account(account))
    }

    fn console_password(
        &self,
        account_id: i64,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(async move { self.console().password(account_id).await })
    }

    fn set_console_password(
        &self,
        account_id: i64,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.console().set_password(account_id, phc, now_ms).await })
    }

    fn set_console_link(
        &self,
        account_id: i64,
        token_sha256: Vec<u8>,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.console()
                .set_link(account_id, token_sha256, expires_ms, now_ms)
                .await
        })
    }

    fn console_link(
        &self,
        token_sha256: Vec<u8>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<(String, u64)>, StoreError>> {
        Box::pin(async move { self.console().link(token_sha256, now_ms).await })
    }

    fn redeem_console_link(
        &self,
        token_sha256: Vec<u8>,
        phc: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move { self.console().redeem_link(token_sha256, phc, now_ms).await })
    }

    fn load_partners(&self) -> BoxFuture<'_, Result<Vec<PartnerRecord>, StoreError>> {
        Box::pin(self.do_load_partners())
    }

    fn insert_partner(&self, partner: NewPartner) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(self.do_insert_partner(partner))
    }

    fn update_partner_enabled(
        &self,
        id: i64,
        enabled: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.do_update_partner_enabled(id, enabled))
    }

    fn delete_partner(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.do_delete_partner(id))
    }

    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.do_audit(entry))
    }

    fn recent_audit(&self, limit: u32) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(self.do_recent_audit(limit))
    }
}

/// Creates the database file (0600) and its directory (0700) when missing, so SQLite's WAL and
/// shared-memory files, which copy the database file's mode, are private too.
fn prepare_db_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        create_private_dir(dir)?;
    }
    match create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(e, &format!("cannot create {}", path.display()))),
    }
}

pub(super) fn api_key_aad(public_key: &str) -> Vec<u8> {
    [b"api_key:".as_slice(), public_key.as_bytes()].concat()
}

pub(super) fn partner_aad(auth_key: &str) -> Vec<u8> {
    [b"partner:".as_slice(), auth_key.as_bytes()].concat()
}

pub(super) fn totp_aad(account_name: &str) -> Vec<u8> {
    [b"totp:".as_slice(), account_name.as_bytes()].concat()
}

/// Key ids beyond `i64::MAX` cannot exist in the table.
pub(super) fn key_id_to_sql(id: KeyId) -> Option<i64> {
    i64::try_from(id).ok()
}

pub(super) fn to_sql_i64(value: u64, field: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} out of range: {value}")))
}

pub(super) fn from_sql_u64(value: i64, field: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{field} is negative in the store: {value}")))
}

pub(super) fn json_text(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a list: {e}")))
}

pub(super) fn json_list(text: &str, id: i64, column: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "api_keys.{column} of key id {id} is not a JSON array of strings: {e}"
        ))
    })
}

/// Maps a sqlx error. Messages come from SQLite or the pool and never contain bound values, so
/// no secret can leak through them.
fn db_error(context: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(e) => io_error(e, context),
        sqlx::Error::Database(e) => StoreError::Unavailable(format!("{context}: {}", e.message())),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(format!("{context}: {e}")),
        e => StoreError::Unavailable(format!("{context}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SecretBytesEq, TotpRecord};
    use super::*;

    const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn master(hex: &str) -> MasterKey {
        MasterKey::from_source(&MasterKeySource::Env(hex.to_owned())).expect("valid key")
    }

    async fn open(dir: &Path, hex: &str) -> SqliteKeyStore {
        SqliteKeyStore::open(&dir.join(DB_FILE_NAME), master(hex))
            .await
            .expect("open")
    }

    fn new_key(public_key: &str, account_id: i64, secret: &[u8]) -> NewKey {
        NewKey {
            public_key: public_key.to_owned(),
            account_id,
            kind: "trade".to_owned(),
            secret: SecretBytes::new(secret.to_vec()),
            ips: vec!["10.0.0.0/8".to_owned()],
            endpoints: vec!["/api/v4/order/new".to_owned()],
            created_ms: 1_700_000_000_000,
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn new_partner(name: &str, auth_key: &str, enc_key: &[u8]) -> NewPartner {
        NewPartner {
            name: name.to_owned(),
            auth_key: auth_key.to_owned(),
            enc_key: SecretBytes::new(enc_key.to_vec()),
            created_ms: 1_700_000_000_000,
        }
    }

    #[tokio::test]
    async fn replace_key_is_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let account = store
            .insert_account("alice".to_owned(), 1)
            .await
            .expect("account");
        let a = store
            .insert_key(new_key("pk-a", account.id, b"secret-a"))
            .await
            .expect("a");
        store
            .insert_key(new_key("pk-b", account.id, b"secret-b"))
            .await
            .expect("b");
        store
            .update_key(
                a,
                KeyUpdate {
                    enabled: Some(false),
                    ..KeyUpdate::default()
                },
            )
            .await
            .expect("disable");

        // A replacement that cannot be inserted (its public key is taken) changes nothing.
        let failed = store
            .replace_key(a, new_key("pk-b", account.id, b"new"), (false, false, 5))
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
        let kept = store
            .get_key(a)
            .await
            .expect("get")
            .expect("the old row is still there");
        assert_eq!(kept.secret.0.expose(), b"secret-a");

        // A good replacement: a new id, the new secret, the state carried over.
        let b_id = store
            .replace_key(a, new_key("pk-a", account.id, b"rotated"), (false, true, 7))
            .await
            .expect("replace");
        let id = b_id.expect("replaced");
        assert_ne!(id, a, "a new id: a fresh nonce state");
        assert!(store.get_key(a).await.expect("get").is_none());
        let new = store.get_key(id).await.expect("get").expect("new row");
        assert_eq!(new.secret.0.expose(), b"rotated");
        assert_eq!(
            (new.enabled, new.idle_deactivated, new.idle_anchor_ms),
            (false, true, 7)
        );
        assert_eq!(
            store
                .replace_key(a, new_key("pk-x", account.id, b"x"), (true, false, 0))
                .await
                .expect("no-op"),
            None
        );
    }

    #[tokio::test]
    async fn partners_round_trip_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        assert!(store.load_partners().await.expect("load").is_empty());
        let a = store
            .insert_partner(new_partner("acme", "auth-aaaa", b"enc-aaaa"))
            .await
            .expect("insert");
        let b = store
            .insert_partner(new_partner("bolt", "auth-bbbb", b"enc-bbbb"))
            .await
            .expect("insert");
        assert!(b > a);
        let loaded = store.load_partners().await.expect("load");
        assert_eq!(
            loaded,
            vec![
                PartnerRecord {
                    id: a,
                    name: "acme".into(),
                    auth_key: "auth-aaaa".into(),
                    enc_key: SecretBytesEq(SecretBytes::new(b"enc-aaaa".to_vec())),
                    enabled: true,
                    created_ms: 1_700_000_000_000,
                },
                PartnerRecord {
                    id: b,
                    name: "bolt".into(),
                    auth_key: "auth-bbbb".into(),
                    enc_key: SecretBytesEq(SecretBytes::new(b"enc-bbbb".to_vec())),
                    enabled: true,
                    created_ms: 1_700_000_000_000,
                },
            ]
        );
        // The Debug output of a record never shows the Enc Key.
        assert!(!format!("{loaded:?}").contains("enc-aaaa"));

        assert!(
            store
                .update_partner_enabled(a, false)
                .await
                .expect("disable")
        );
        assert!(
            !store
                .update_partner_enabled(9_999, false)
                .await
                .expect("missing")
        );
        assert!(store.delete_partner(b).await.expect("delete"));
        assert!(!store.delete_partner(b).await.expect("gone"));
        store.close().await;

        let store = open(dir.path(), KEY_A).await;
        let loaded = store.load_partners().await.expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].name, "acme");
        assert!(!loaded[0].enabled);
        assert_eq!(loaded[0].enc_key.0.expose(), b"enc-aaaa");
        assert!(store.update_partner_enabled(a, true).await.expect("enable"));
        assert!(store.load_partners().await.expect("load")[0].enabled);
        // Ids are never reused.
        let c = store
            .insert_partner(new_partner("bolt", "auth-bbbb", b"enc-cccc"))
            .await
            .expect("insert");
        assert!(c > b, "{b} {c}");
        store.close().await;
    }

    #[tokio::test]
    async fn partner_enc_keys_are_not_stored_in_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let enc = b"enc-PLAINTEXT-ENC-KEY-0f1e2d3c4b5a";
        let id = store
            .insert_partner(new_partner("acme", "auth-plain", enc))
            .await
            .expect("insert");
        let raw: Vec<u8> = sqlx::query_scalar("SELECT enc_key FROM partners WHERE id = ?1")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .expect("raw");
        assert_eq!(raw.len(), NONCE_LEN + enc.len() + TAG_LEN);
        assert!(!contains(&raw, enc));
        for entry in fs::read_dir(dir.path()).expect("dir") {
            let bytes = fs::read(entry.expect("entry").path()).expect("read");
            assert!(!contains(&bytes, enc));
        }
        store.close().await;
        let db = fs::read(dir.path().join(DB_FILE_NAME)).expect("read db");
        assert!(contains(&db, b"auth-plain"), "the file does hold the row");
        assert!(!contains(&db, enc));

        // Bound to its row: moved to another partner, it no longer decrypts.
        let store = open(dir.path(), KEY_A).await;
        let other = store
            .insert_partner(new_partner("bolt", "auth-other", b"enc-other"))
            .await
            .expect("insert");
        sqlx::query(
            "UPDATE partners SET enc_key = (SELECT enc_key FROM partners WHERE id = ?1) WHERE id = ?2",
        )
        .bind(id)
        .bind(other)
        .execute(&store.pool)
        .await
        .expect("swap");
        match store.load_partners().await {
            Err(StoreError::Corrupt(msg)) => assert!(!msg.contains("PLAINTEXT"), "{msg}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        store.close().await;

        // A different master key is refused before any partner is read.
        assert!(matches!(
            SqliteKeyStore::open(&dir.path().join(DB_FILE_NAME), master(KEY_B)).await,
            Err(StoreError::WrongMasterKey(_))
        ));
    }

    #[tokio::test]
    async fn partner_names_and_auth_keys_conflict() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        store
            .insert_partner(new_partner("acme", "auth-1", b"enc-secret-one"))
            .await
            .expect("insert");
        match store
            .insert_partner(new_partner("acme", "auth-2", b"enc-secret-two"))
            .await
        {
            Err(StoreError::Conflict(msg)) => {
                assert_eq!(msg, "a partner named \"acme\" already exists");
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
        match store
            .insert_partner(new_partner("bolt", "auth-1", b"enc-secret-two"))
            .await
        {
            Err(StoreError::Conflict(msg)) => {
                assert_eq!(msg, "a partner with Auth Key auth-1 already exists");
                assert!(!msg.contains("enc-secret"), "{msg}");
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert_eq!(store.load_partners().await.expect("load").len(), 1);
        store.close().await;
    }

    #[tokio::test]
    async fn accounts_keys_and_audit_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;

        let alice = store
            .insert_account("alice".to_owned(), 1_000)
            .await
            .expect("insert account");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.totp, None);
        assert_eq!(
            store.get_account("alice".to_owned()).await.expect("get"),
            Some(alice.clone())
        );
        assert_eq!(
            store.get_account("bob".to_owned()).await.expect("get"),
            None
        );

        // TOTP state, failure counter and lock.
        let mut changed = alice.clone();
        changed.totp = Some(TotpRecord {
            secret: SecretBytesEq(SecretBytes::new(b"totp-secret-bytes-0001".to_vec())),
            confirmed: true,
            last_step: Some(56_666_666),
        });
        changed.failed_attempts = 3;
        changed.locked_until_ms = Some(2_000);
        assert!(store.update_account(changed.clone()).await.expect("update"));
        assert_eq!(
            store.get_account("alice".to_owned()).await.expect("get"),
            Some(changed.clone())
        );
        let mut wrong_name = changed.clone();
        wrong_name.name = "mallory".to_owned();
        assert!(!store.update_account(wrong_name).await.expect("update"));
        let mut missing = changed.clone();
        missing.id = 9_999;
        assert!(!store.update_account(missing).await.expect("update"));
        // Clearing TOTP.
        let mut cleared = changed.clone();
        cleared.totp = None;
        cleared.failed_attempts = 0;
        cleared.locked_until_ms = None;
        assert!(store.update_account(cleared.clone()).await.expect("update"));
        assert_eq!(store.list_accounts().await.expect("list"), vec![cleared]);

        // Keys.
        let id = store
            .insert_key(new_key("pk-1", alice.id, b"secret-one"))
            .await
            .expect("insert key");
        let key = store.get_key(id).await.expect("get").expect("exists");
        assert_eq!(key.public_key, "pk-1");
        assert_eq!(key.account_id, alice.id);
        assert_eq!(key.account_name, "alice");
        assert_eq!(key.kind, "trade");
        assert_eq!(key.secret.0.expose(), b"secret-one");
        assert!(key.enabled);
        assert!(!key.idle_deactivated);
        assert_eq!(key.ips, vec!["10.0.0.0/8".to_owned()]);
        assert_eq!(key.endpoints, vec!["/api/v4/order/new".to_owned()]);
        assert_eq!(key.created_ms, 1_700_000_000_000);
        assert_eq!(key.idle_anchor_ms, 1_700_000_000_000);
        assert_eq!(key.last_used_ms, None);
        assert_eq!(store.load_keys().await.expect("load"), vec![key.clone()]);

        // Only the `Some` fields change.
        let update = KeyUpdate {
            enabled: Some(false),
            ips: Some(vec![]),
            ..KeyUpdate::default()
        };
        assert!(store.update_key(id, update).await.expect("update"));
        let after = store.get_key(id).await.expect("get").expect("exists");
        assert!(!after.enabled);
        assert!(after.ips.is_empty());
        assert_eq!(after.endpoints, key.endpoints);
        assert_eq!(after.secret, key.secret);
        assert_eq!(after.idle_anchor_ms, key.idle_anchor_ms);

        let update = KeyUpdate {
            enabled: Some(true),
            idle_deactivated: Some(true),
            idle_anchor_ms: Some(1_800_000_000_000),
            endpoints: Some(vec!["/a".to_owned(), "/b".to_owned()]),
            secret: Some(SecretBytes::new(b"secret-two".to_vec())),
            ..KeyUpdate::default()
        };
        assert!(store.update_key(id, update).await.expect("update"));
        let after = store.get_key(id).await.expect("get").expect("exists");
        assert!(after.enabled);
        assert!(after.idle_deactivated);
        assert_eq!(after.idle_anchor_ms, 1_800_000_000_000);
        assert_eq!(after.endpoints, vec!["/a".to_owned(), "/b".to_owned()]);
        assert_eq!(after.secret.0.expose(), b"secret-two");
        assert!(after.ips.is_empty());

        assert!(
            !store
                .update_key(id + 100, KeyUpdate::default())
                .await
                .expect("update")
        );
        assert!(
            store
                .update_key(id, KeyUpdate::default())
                .await
                .expect("no-op update of an existing key")
        );
        assert!(
            !store
                .update_key(u64::MAX, KeyUpdate::default())
                .await
                .expect("update")
        );

        // A key for a missing account.
        assert!(matches!(
            store.insert_key(new_key("pk-x", 4_242, b"s")).await,
            Err(StoreError::Conflict(_))
        ));

        // Deletes.
        assert!(store.delete_key(id).await.expect("delete"));
        assert!(!store.delete_key(id).await.expect("delete again"));
        assert_eq!(store.get_key(id).await.expect("get"), None);
        assert!(store.load_keys().await.expect("load").is_empty());

        // Audit, newest first.
        for (i, action) in ["key.create", "key.disable", "key.delete"]
            .iter()
            .enumerate()
        {
            store
                .audit(AuditEntry {
                    at_ms: 10 + i as u64,
                    actor: "cli".to_owned(),
                    action: (*action).to_owned(),
                    detail: format!("key id {id}"),
                })
                .await
                .expect("audit");
        }
        let recent = store.recent_audit(2).await.expect("recent");
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].action, "key.delete");
        assert_eq!(recent[0].at_ms, 12);
        assert_eq!(recent[1].action, "key.disable");
        assert_eq!(store.recent_audit(10).await.expect("recent").len(), 3);
        store.close().await;
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("carol".to_owned(), 5)
            .await
            .expect("account");
        let id = store
            .insert_key(new_key("pk-c", acct.id, b"carol-secret"))
            .await
            .expect("key");
        store.touch_keys(vec![(id, 77)]).await.expect("touch");
        store.close().await;

        let store = open(dir.path(), KEY_A).await;
        let keys = store.load_keys().await.expect("load");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret.0.expose(), b"carol-secret");
        assert_eq!(keys[0].last_used_ms, Some(77));
        store.close().await;
    }

    #[tokio::test]
    async fn secrets_are_not_stored_in_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let api_secret = b"PLAINTEXT-API-SECRET-6f1c2d3e4a5b";
        let totp_secret = b"PLAINTEXT-TOTP-SECRET-99887766";
        let mut acct = store
            .insert_account("dave".to_owned(), 1)
            .await
            .expect("account");
        acct.totp = Some(TotpRecord {
            secret: SecretBytesEq(SecretBytes::new(totp_secret.to_vec())),
            confirmed: false,
            last_step: None,
        });
        assert!(store.update_account(acct.clone()).await.expect("update"));
        let id = store
            .insert_key(new_key("pk-d", acct.id, api_secret))
            .await
            .expect("key");

        // The raw column holds nonce || ciphertext || tag, not the secret.
        let raw: Vec<u8> = sqlx::query_scalar("SELECT secret FROM api_keys WHERE id = ?1")
            .bind(i64::try_from(id).expect("id"))
            .fetch_one(&store.pool)
            .await
            .expect("raw secret");
        assert_eq!(raw.len(), NONCE_LEN + api_secret.len() + TAG_LEN);
        assert!(!contains(&raw, api_secret));
        let raw_totp: Vec<u8> =
            sqlx::query_scalar("SELECT totp_secret FROM accounts WHERE id = ?1")
                .bind(acct.id)
                .fetch_one(&store.pool)
                .await
                .expect("raw totp");
        assert!(!contains(&raw_totp, totp_secret));

        // Two encryptions of the same secret differ (random nonce).
        let id2 = store
            .insert_key(new_key("pk-d2", acct.id, api_secret))
            .await
            .expect("key");
        let raw2: Vec<u8> = sqlx::query_scalar("SELECT secret FROM api_keys WHERE id = ?1")
            .bind(i64::try_from(id2).expect("id"))
            .fetch_one(&store.pool)
            .await
            .expect("raw secret");
        assert_ne!(raw, raw2);

        // Nothing in the files on disk (database, WAL) holds a secret.
        let before_close = fs::read_dir(dir.path()).expect("dir");
        for entry in before_close {
            let bytes = fs::read(entry.expect("entry").path()).expect("read");
            assert!(!contains(&bytes, api_secret));
            assert!(!contains(&bytes, totp_secret));
        }
        store.close().await;
        let db = fs::read(dir.path().join(DB_FILE_NAME)).expect("read db");
        assert!(contains(&db, b"pk-d"), "the file does hold the rows");
        assert!(!contains(&db, api_secret));
        assert!(!contains(&db, totp_secret));
    }

    #[tokio::test]
    async fn ciphertexts_cannot_move_between_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("erin".to_owned(), 1)
            .await
            .expect("account");
        let a = store
            .insert_key(new_key("pk-a", acct.id, b"secret-a"))
            .await
            .expect("key");
        let b = store
            .insert_key(new_key("pk-b", acct.id, b"secret-b"))
            .await
            .expect("key");
        sqlx::query(
            "UPDATE api_keys SET secret = (SELECT secret FROM api_keys WHERE id = ?1) WHERE id = ?2",
        )
        .bind(i64::try_from(a).expect("id"))
        .bind(i64::try_from(b).expect("id"))
        .execute(&store.pool)
        .await
        .expect("swap");
        assert!(matches!(store.get_key(a).await, Ok(Some(_))));
        match store.get_key(b).await {
            Err(StoreError::Corrupt(msg)) => assert!(!msg.contains("secret-a"), "{msg}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(matches!(
            store.load_keys().await,
            Err(StoreError::Corrupt(_))
        ));
        store.close().await;
    }

    #[tokio::test]
    async fn a_different_master_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("frank".to_owned(), 1)
            .await
            .expect("account");
        store
            .insert_key(new_key("pk-f", acct.id, b"frank-secret"))
            .await
            .expect("key");
        store.close().await;

        let path = dir.path().join(DB_FILE_NAME);
        match SqliteKeyStore::open(&path, master(KEY_B)).await {
            Err(StoreError::WrongMasterKey(msg)) => {
                assert!(msg.contains("does not match this data directory"), "{msg}");
                assert!(!msg.contains(KEY_B) && !msg.contains(KEY_A), "{msg}");
            }
            other => panic!("expected WrongMasterKey, got {other:?}"),
        }

        // The right key still works and nothing was damaged.
        let store = open(dir.path(), KEY_A).await;
        let keys = store.load_keys().await.expect("load");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret.0.expose(), b"frank-secret");
        store.close().await;
    }

    #[tokio::test]
    async fn duplicates_conflict() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("gina".to_owned(), 1)
            .await
            .expect("account");
        assert!(matches!(
            store.insert_account("gina".to_owned(), 2).await,
            Err(StoreError::Conflict(_))
        ));
        store
            .insert_key(new_key("pk-g", acct.id, b"one"))
            .await
            .expect("key");
        match store.insert_key(new_key("pk-g", acct.id, b"two")).await {
            Err(StoreError::Conflict(msg)) => assert!(!msg.contains("two"), "{msg}"),
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert_eq!(store.load_keys().await.expect("load").len(), 1);
        assert_eq!(store.list_accounts().await.expect("list").len(), 1);
        store.close().await;
    }

    #[tokio::test]
    async fn touch_keys_keeps_the_latest_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("hank".to_owned(), 1)
            .await
            .expect("account");
        let a = store
            .insert_key(new_key("pk-h1", acct.id, b"1"))
            .await
            .expect("key");
        let b = store
            .insert_key(new_key("pk-h2", acct.id, b"2"))
            .await
            .expect("key");
        store
            .touch_keys(vec![
                (a, 500),
                (b, 300),
                (a, 400),
                (9_999, 1),
                (u64::MAX, 1),
            ])
            .await
            .expect("touch");
        let used = |id| {
            let store = &store;
            async move {
                store
                    .get_key(id)
                    .await
                    .expect("get")
                    .expect("exists")
                    .last_used_ms
            }
        };
        assert_eq!(used(a).await, Some(500));
        assert_eq!(used(b).await, Some(300));
        store
            .touch_keys(vec![(a, 100), (b, 900)])
            .await
            .expect("touch");
        assert_eq!(used(a).await, Some(500));
        assert_eq!(used(b).await, Some(900));
        store.touch_keys(vec![]).await.expect("empty batch");
        store.close().await;
    }

    #[tokio::test]
    async fn ids_are_never_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), KEY_A).await;
        let acct = store
            .insert_account("ivy".to_owned(), 1)
            .await
            .expect("account");
        let a = store
            .insert_key(new_key("pk-i1", acct.id, b"1"))
            .await
            .expect("key");
        let b = store
            .insert_key(new_key("pk-i2", acct.id, b"2"))
            .await
            .expect("key");
        assert!(store.delete_key(b).await.expect("delete"));
        let c = store
            .insert_key(new_key("pk-i2", acct.id, b"3"))
            .await
            .expect("key");
        assert!(c > b && b > a, "{a} {b} {c}");
        assert!(store.delete_key(c).await.expect("delete"));
        store.close().await;

        // Also across a restart.
        let store = open(dir.path(), KEY_A).await;
        let d = store
            .insert_key(new_key("pk-i3", acct.id, b"4"))
            .await
            .expect("key");
        assert!(d > c, "{c} {d}");
        store.close().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn master_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let key = load_or_create_master_key(&data, None).expect("generate");
        assert!(
            key.origin().starts_with("generated into"),
            "{}",
            key.origin()
        );
        let hex = fs::read_to_string(data.join(MASTER_KEY_FILE)).expect("read");
        assert!(!format!("{key:?}").contains(hex.trim()));
        assert_eq!(mode(&data), 0o700);
        let file = data.join(MASTER_KEY_FILE);
        assert_eq!(mode(&file), 0o600);
        let text = fs::read_to_string(&file).expect("read");
        assert_eq!(text.trim().len(), 64);
        assert!(text.trim().bytes().all(|c| c.is_ascii_hexdigit()));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&data).expect("dir").count(), 1);

        // The store is created with it; the same file opens it again.
        let db = data.join(DB_FILE_NAME);
        let store = SqliteKeyStore::open(&db, key).await.expect("open");
        store.close().await;
        assert_eq!(mode(&db), 0o600);
        let again = load_or_create_master_key(&data, None).expect("read");
        assert!(again.origin().starts_with("file "), "{}", again.origin());
        let store = SqliteKeyStore::open(&db, again).await.expect("reopen");
        store.close().await;

        // The environment wins over the file.
        let env = load_or_create_master_key(&data, Some(KEY_B)).expect("env");
        assert_eq!(env.origin(), MASTER_KEY_ENV);
        assert!(matches!(
            SqliteKeyStore::open(&db, env).await,
            Err(StoreError::WrongMasterKey(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_master_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(MASTER_KEY_FILE);
        fs::write(&file, format!("{KEY_A}\n")).expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        match load_or_create_master_key(dir.path(), None) {
            Err(StoreError::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
                let msg = e.to_string();
                assert!(msg.contains("chmod 600") && msg.contains("0644"), "{msg}");
                assert!(!msg.contains(KEY_A), "{msg}");
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
        // Still there, untouched.
        assert_eq!(
            fs::read_to_string(&file).expect("read"),
            format!("{KEY_A}\n")
        );
        // Fixed permissions: accepted.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        let key = load_or_create_master_key(dir.path(), None).expect("load");
        assert!(key.origin().starts_with("file "));
        // The environment wins without reading the file at all.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(load_or_create_master_key(dir.path(), Some(KEY_B)).is_ok());
    }

    #[test]
    fn malformed_master_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad_values = [
            String::new(),
            "abc".to_owned(),
            KEY_A[..63].to_owned(),
            format!("{KEY_A}00"),
            format!("{}zz", &KEY_A[..62]),
            format!("{}é", &KEY_A[..62]),
        ];
        for value in &bad_values {
            match load_or_create_master_key(dir.path(), Some(value)) {
                Err(StoreError::WrongMasterKey(msg)) => {
                    assert!(msg.contains(MASTER_KEY_ENV), "{msg}");
                    assert!(msg.contains("64 hex characters"), "{msg}");
                    if value.len() > 4 {
                        assert!(!msg.contains(value.as_str()), "{msg}");
                    }
                }
                other => panic!("expected WrongMasterKey for {value:?}, got {other:?}"),
            }
        }
        // The environment was given: no file was generated.
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
        // Upper case and surrounding whitespace are fine.
        let upper = format!(" {}\n", KEY_A.to_ascii_uppercase());
        assert!(load_or_create_master_key(dir.path(), Some(&upper)).is_ok());

        // A malformed key file names the file.
        let file = dir.path().join(MASTER_KEY_FILE);
        fs::write(&file, "not a key\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        match load_or_create_master_key(dir.path(), None) {
            Err(StoreError::WrongMasterKey(msg)) => {
                assert!(msg.contains(&file.display().to_string()), "{msg}");
            }
            other => panic!("expected WrongMasterKey, got {other:?}"),
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = master(KEY_A);
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("0011223344"), "{shown}");
        let source = MasterKeySource::Env(KEY_A.to_owned());
        assert_eq!(format!("{source:?}"), "Env(<redacted>)");
    }
}
