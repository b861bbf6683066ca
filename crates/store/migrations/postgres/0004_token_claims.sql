-- Single use of Fiat Gateway partner tokens, shared by every instance on this nonce store
-- (decisions.md 23: "Token already used."). id = the token's replay id (32 bytes); a row
-- lives until the token expires (Unix ms) and is deleted in small batches after.

CREATE TABLE token_claims (
    id          BYTEA  PRIMARY KEY,
    expires_ms  BIGINT NOT NULL
);

CREATE INDEX token_claims_expires_ms ON token_claims (expires_ms);
