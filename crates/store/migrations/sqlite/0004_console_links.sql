-- Key store schema, version 4: one-time console links (issue 8).
--
-- `wbauth accounts create NAME` (without a password) and `wbauth accounts link NAME` print a
-- link with a random 256-bit token; its holder opens it once to set the account's console
-- password. Only the token's SHA-256 is stored; one link per account (a new link replaces the
-- old one); setting the password deletes the row in the same transaction.

CREATE TABLE console_links (
    token_sha256  BLOB   PRIMARY KEY NOT NULL,
    account_id    BIGINT NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE RESTRICT,
    expires_ms    BIGINT NOT NULL CHECK (expires_ms >= 0),
    created_ms    BIGINT NOT NULL CHECK (created_ms >= 0)
);
