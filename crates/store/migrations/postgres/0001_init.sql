-- Key store schema, version 1 (PostgreSQL; the same tables and columns as
-- migrations/sqlite/0001_init.sql, a test keeps the two in step).
--
-- BIGINT times (Unix ms, never floating point), BYTEA for encrypted values
-- (`nonce (24 bytes) || XChaCha20-Poly1305 ciphertext and tag`). Ids come from identity
-- columns, so a deleted row's id is never handed out again (nonce state is keyed by id).

CREATE TABLE accounts (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    created_ms       BIGINT  NOT NULL CHECK (created_ms >= 0),
    totp_secret      BYTEA   NULL,
    totp_confirmed   BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step   BIGINT  NULL CHECK (totp_last_step >= 0),
    failed_attempts  BIGINT  NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until_ms  BIGINT  NULL CHECK (locked_until_ms >= 0)
);

CREATE TABLE api_keys (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_key        TEXT    NOT NULL UNIQUE,
    account_id        BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    kind              TEXT    NOT NULL,
    secret            BYTEA   NOT NULL,
    enabled           BOOLEAN NOT NULL,
    idle_deactivated  BOOLEAN NOT NULL,
    ips               TEXT    NOT NULL DEFAULT '[]',
    endpoints         TEXT    NOT NULL DEFAULT '[]',
    created_ms        BIGINT  NOT NULL CHECK (created_ms >= 0),
    idle_anchor_ms    BIGINT  NOT NULL CHECK (idle_anchor_ms >= 0),
    last_used_ms      BIGINT  NULL CHECK (last_used_ms >= 0)
);

CREATE INDEX api_keys_account_id ON api_keys (account_id);

CREATE TABLE audit (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   BIGINT NOT NULL CHECK (at_ms >= 0),
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    detail  TEXT   NOT NULL
);

CREATE TABLE meta (
    k  TEXT  PRIMARY KEY NOT NULL,
    v  BYTEA NOT NULL
);
