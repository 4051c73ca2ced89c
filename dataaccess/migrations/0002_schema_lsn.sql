-- 0002: where the last schema change (migration, new partitions) sits in the WAL, so a process
-- that connects later keeps reads off replicas that have not replayed it (see
-- dataaccess.consistency, "schema floor"). One row; bigint LSN, written after each DDL commit.

CREATE TABLE schema_lsn (
    id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
    lsn         bigint      NOT NULL CHECK (lsn > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
