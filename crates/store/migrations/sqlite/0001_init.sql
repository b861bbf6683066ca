-- Key store schema, version 1 (embedded SQLite store).
--
-- Kept close to what PostgreSQL accepts: BIGINT times (Unix ms, never floating point), TEXT,
-- BOOLEAN with explicit 0/1 checks, BLOB (BYTEA there) for encrypted values. Ids come from
-- AUTOINCREMENT so a deleted row's id is never handed out again (nonce state is keyed by id).
-- Encrypted columns hold `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext and tag`.

CREATE TABLE accounts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    created_ms       BIGINT  NOT NULL CHECK (created_ms >= 0),
    totp_secret      BLOB    NULL,
    totp_confirmed   BOOLEAN NOT NULL DEFAULT 0 CHECK (totp_confirmed IN (0, 1)),
    totp_last_step   BIGINT  NULL CHECK (totp_last_step >= 0),
    failed_attempts  BIGINT  NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until_ms  BIGINT  NULL CHECK (locked_until_ms >= 0)
);

CREATE TABLE api_keys (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    public_key        TEXT    NOT NULL UNIQUE,
    account_id        BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    kind              TEXT    NOT NULL,
    secret            BLOB    NOT NULL,
    enabled           BOOLEAN NOT NULL CHECK (enabled IN (0, 1)),
    idle_deactivated  BOOLEAN NOT NULL CHECK (idle_deactivated IN (0, 1)),
    ips               TEXT    NOT NULL DEFAULT '[]',
    endpoints         TEXT    NOT NULL DEFAULT '[]',
    created_ms        BIGINT  NOT NULL CHECK (created_ms >= 0),
    idle_anchor_ms    BIGINT  NOT NULL CHECK (idle_anchor_ms >= 0),
    last_used_ms      BIGINT  NULL CHECK (last_used_ms >= 0)
);

CREATE INDEX api_keys_account_id ON api_keys (account_id);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   BIGINT NOT NULL CHECK (at_ms >= 0),
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    detail  TEXT   NOT NULL
);

CREATE TABLE meta (
    k  TEXT PRIMARY KEY NOT NULL,
    v  BLOB NOT NULL
);
