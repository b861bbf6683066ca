-- Web console passwords (issue 8): one argon2id hash (PHC string: algorithm, parameters,
-- salt and hash) per account; no row means the account has no console password yet.

CREATE TABLE console_passwords (
    account_id  BIGINT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    phc         TEXT   NOT NULL,
    updated_ms  BIGINT NOT NULL CHECK (updated_ms >= 0)
);
