-- Key store schema, version 2: Fiat Gateway partners (as migrations/sqlite/0002_partners.sql).

CREATE TABLE partners (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    auth_key    TEXT    NOT NULL UNIQUE,
    enc_key     BYTEA   NOT NULL,
    enabled     BOOLEAN NOT NULL,
    created_ms  BIGINT  NOT NULL CHECK (created_ms >= 0)
);
