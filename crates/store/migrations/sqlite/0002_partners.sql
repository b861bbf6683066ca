-- Key store schema, version 2: Fiat Gateway partners (Auth Key → Enc Key).
--
-- The Enc Key is encrypted like every other secret (`nonce || XChaCha20-Poly1305 ciphertext and
-- tag`), bound to its row by the associated data `partner:<auth_key>`. Ids come from
-- AUTOINCREMENT, so a deleted partner's id is never handed out again.

CREATE TABLE partners (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    auth_key    TEXT    NOT NULL UNIQUE,
    enc_key     BLOB    NOT NULL,
    enabled     BOOLEAN NOT NULL CHECK (enabled IN (0, 1)),
    created_ms  BIGINT  NOT NULL CHECK (created_ms >= 0)
);
