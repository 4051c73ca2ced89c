-- 0001: users, products (FTS + trigram), monthly-partitioned orders, order lines, idempotency keys.
-- Only built-in types (no enum/composite/citext): asyncpg never needs type introspection, whose
-- set_config('jit') call pins RDS Proxy sessions.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness without citext; also the index of users.get_by_email.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE products (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           text        NOT NULL CHECK (char_length(sku) BETWEEN 1 AND 64),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 300),
    price_cents   bigint      NOT NULL CHECK (price_cents >= 0),
    stock         integer     NOT NULL CHECK (stock >= 0),
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('simple', sku), 'B')
    ) STORED
);
CREATE UNIQUE INDEX products_sku_key ON products (sku);
CREATE INDEX products_search_idx ON products USING gin (search_vector);
CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);

-- Order ids embed their creation millisecond: id = (epoch_ms << 20) | (seq & 0xFFFFF). orders.get(id)
-- derives the created_at window from the id, so a lookup by id alone still prunes to one partition.
CREATE SEQUENCE orders_id_seq;
CREATE TABLE orders (
    id              bigint      NOT NULL DEFAULT (
        (floor(extract(epoch FROM now()) * 1000)::bigint << 20) | (nextval('orders_id_seq') & 1048575)),
    created_at      timestamptz NOT NULL DEFAULT now(),
    user_id         bigint      NOT NULL REFERENCES users (id),
    status          text        NOT NULL DEFAULT 'placed'
                    CHECK (status IN ('placed', 'paid', 'shipped', 'cancelled')),
    total_cents     bigint      NOT NULL CHECK (total_cents >= 0),
    idempotency_key text        NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC);

CREATE TABLE order_lines (
    order_id         bigint      NOT NULL,
    order_created_at timestamptz NOT NULL,
    line_no          smallint    NOT NULL CHECK (line_no > 0),
    product_id       bigint      NOT NULL REFERENCES products (id),
    quantity         integer     NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint      NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (order_id, order_created_at) REFERENCES orders (id, created_at)
);
CREATE INDEX order_lines_product_idx ON order_lines (product_id);

-- A unique index on partitioned "orders" would have to include created_at, so idempotency keys
-- live in their own table: the INSERT ... ON CONFLICT on its primary key is what makes
-- orders.place exactly-once, also for concurrent duplicate submissions.
CREATE TABLE order_idempotency (
    idempotency_key  text        PRIMARY KEY CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    user_id          bigint      NOT NULL,
    request_hash     text        NOT NULL,
    order_id         bigint,
    order_created_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Creates the monthly partitions of orders for the current UTC month, months_ahead more and
-- months_back earlier ones (backfills).
-- Serialised by a transaction-level advisory lock (does not pin RDS Proxy). Returns #created.
CREATE FUNCTION commerce_ensure_order_partitions(months_ahead integer, months_back integer DEFAULT 0) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m       timestamp;
    pname   text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('commerce_db.orders_partitions'));
    FOR i IN -months_back..months_ahead LOOP
        m := date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i);
        pname := format('orders_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(pname) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF orders FOR VALUES FROM (%L) TO (%L)',
                           pname, (m AT TIME ZONE 'UTC'), ((m + interval '1 month') AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
