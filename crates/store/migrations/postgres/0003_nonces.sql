-- The PostgreSQL nonce store (PostgreSQL only: the embedded nonce store is a journal file).
--
-- Nonces are u64: stored order-preserving in a signed BIGINT as `(n XOR 2^63) as i64`
-- (decisions.md 6), so `<` on the column is `<` on the nonces. Never REAL/DOUBLE.
-- key_id is the api_keys id but deliberately not a foreign key: a deleted key's nonce state
-- stays (ids are never reused) and the nonce store may live in another database.

CREATE TABLE nonce_high_water (
    key_id      BIGINT PRIMARY KEY,
    last_nonce  BIGINT NOT NULL
);

-- Window-mode uniqueness: one row per accepted (key, nonce) until expires_ms
-- (nonce + 5000 + margin, decisions.md 15); expired rows are deleted in small batches.
CREATE TABLE nonce_window (
    key_id      BIGINT NOT NULL,
    nonce       BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);

CREATE INDEX nonce_window_expires_ms ON nonce_window (expires_ms);
