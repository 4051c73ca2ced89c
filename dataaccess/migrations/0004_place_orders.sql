-- 0004: place many orders in one statement (the group-commit path of orders.place).
--
-- Called in autocommit, so the whole batch is one transaction and the hot products' row locks are
-- held for no client round trip at all: from the locking SELECT inside this function to the
-- COMMIT that ends the statement. Every order keeps its own outcome (one result row each).
--
-- Orders are given as parallel arrays (position i = order i, 1-based); their lines as
-- (line_order, product_id, quantity) triples. Keys must be distinct within one call.
--
-- Lock order, the same as the one-order path and orders.cancel, so nothing can deadlock:
--   1. idempotency keys, claimed in key order (a concurrent duplicate waits here, before any
--      product lock is held);
--   2. product rows (FOR NO KEY UPDATE: order_lines' FK checks, KEY SHARE, are not blocked), in id
--      order, only those whose committed stock can still serve something (a sold-out product
--      refuses its buyers without queueing on its row).
-- Stock is then allocated in arrival order (position), all lines of an order or none; orders
-- that get nothing release their key claims in the same transaction.
--
-- outcome: placed | existing (key already used by the same request: that order is returned) |
--          conflict (key used by a different request) | unknown_user | unknown_product (pids =
--          the missing ids) | out_of_stock (pids, qtys = the short lines, vals = units available).
-- For placed/existing: pids/qtys/vals = the order's lines with unit prices (price at lock time).

CREATE FUNCTION commerce_place_orders(
    p_keys text[], p_users bigint[], p_hashes text[],
    p_line_order integer[], p_line_pid bigint[], p_line_qty integer[]
) RETURNS TABLE (
    pos integer, outcome text, order_id bigint, order_created_at timestamptz, order_status text,
    order_user bigint, order_total bigint, pids bigint[], qtys integer[], vals bigint[]
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n          integer := coalesce(cardinality(p_keys), 0);
    claimed    boolean[] := array_fill(false, ARRAY[n]);
    result     text[] := array_fill(NULL::text, ARRAY[n]);
    lock_ids   bigint[];
    claimed_pos integer[];
    total      bigint;
    lp_id      bigint[] := '{}';
    lp_stock   integer[] := '{}';
    lp_price   bigint[] := '{}';
    r          record;
    j          integer;
    ok         boolean;
    short_p    bigint[];
    short_q    integer[];
    short_a    bigint[];
    placed_pos integer[] := '{}';
    placed_tot bigint[] := '{}';
    line_price bigint[] := array_fill(NULL::bigint, ARRAY[coalesce(cardinality(p_line_pid), 0)]);
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;

    -- 1. Claim the keys (key order). Unclaimed ones belong to an earlier or concurrent request.
    WITH ins AS (
        INSERT INTO order_idempotency AS k (idempotency_key, user_id, request_hash)
        SELECT t.k, t.u, t.h FROM unnest(p_keys, p_users, p_hashes) AS t(k, u, h) ORDER BY t.k
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING k.idempotency_key
    )
    SELECT array_agg(t.i) INTO claimed_pos
    FROM unnest(p_keys) WITH ORDINALITY AS t(k, i) JOIN ins ON ins.idempotency_key = t.k;
    FOREACH j IN ARRAY coalesce(claimed_pos, '{}') LOOP
        claimed[j] := true;
    END LOOP;

    -- Requests whose key was taken: the existing order, or a conflict.
    RETURN QUERY
    SELECT t.i::integer,
           CASE WHEN k.request_hash <> t.h THEN 'conflict'
                WHEN o.id IS NULL THEN 'unlinked' ELSE 'existing' END,
           o.id, o.created_at, o.status, o.user_id, o.total_cents,
           ls.pids, ls.qtys, ls.prices
    FROM unnest(p_keys, p_hashes) WITH ORDINALITY AS t(k, h, i)
    JOIN order_idempotency k ON k.idempotency_key = t.k
    LEFT JOIN orders o ON o.id = k.order_id AND o.created_at = k.order_created_at
    LEFT JOIN LATERAL (
        SELECT array_agg(l.product_id ORDER BY l.line_no) AS pids,
               array_agg(l.quantity ORDER BY l.line_no) AS qtys,
               array_agg(l.unit_price_cents ORDER BY l.line_no) AS prices
        FROM order_lines l WHERE l.order_id = o.id AND l.order_created_at = o.created_at
    ) ls ON o.id IS NOT NULL
    WHERE NOT claimed[t.i];

    -- Unknown users.
    FOR r IN
        SELECT t.i::integer AS i FROM unnest(p_users) WITH ORDINALITY AS t(u, i)
        WHERE claimed[t.i] AND NOT EXISTS (SELECT 1 FROM users WHERE id = t.u)
    LOOP
        result[r.i] := 'unknown_user';
    END LOOP;

    -- Unknown products (all missing ids of an order are named).
    FOR r IN
        SELECT l.o, array_agg(l.pid ORDER BY l.n) AS missing
        FROM unnest(p_line_order, p_line_pid) WITH ORDINALITY AS l(o, pid, n)
        WHERE claimed[l.o] AND result[l.o] IS NULL
          AND NOT EXISTS (SELECT 1 FROM products p WHERE p.id = l.pid)
        GROUP BY l.o
    LOOP
        result[r.o] := 'unknown_product';
        pos := r.o; outcome := 'unknown_product'; pids := r.missing;
        order_id := NULL; order_created_at := NULL; order_status := NULL; order_user := NULL;
        order_total := NULL; qtys := NULL; vals := NULL;
        RETURN NEXT;
    END LOOP;
    FOR j IN 1..n LOOP
        IF result[j] = 'unknown_user' THEN
            pos := j; outcome := 'unknown_user'; order_user := p_users[j];
            order_id := NULL; order_created_at := NULL; order_status := NULL; order_total := NULL;
            pids := NULL; qtys := NULL; vals := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;

    -- 2. Lock the products that can still serve something, in id order (committed snapshot first:
    --    a sold-out product is refused without waiting for its row lock).
    SELECT array_agg(DISTINCT l.pid ORDER BY l.pid) INTO lock_ids
    FROM unnest(p_line_order, p_line_pid, p_line_qty) AS l(o, pid, q)
    JOIN products p ON p.id = l.pid
    WHERE claimed[l.o] AND result[l.o] IS NULL AND p.stock >= l.q;
    IF lock_ids IS NOT NULL THEN
        FOR r IN
            SELECT p.id, p.stock, p.price_cents FROM products p
            WHERE p.id = ANY (lock_ids) ORDER BY p.id FOR NO KEY UPDATE
        LOOP
            lp_id := lp_id || r.id;
            lp_stock := lp_stock || r.stock;
            lp_price := lp_price || r.price_cents;
        END LOOP;
    END IF;

    -- 3. Allocate in arrival order: all lines of an order or none.
    FOR r IN
        SELECT l.o, array_agg(l.pid ORDER BY l.n) AS lpids, array_agg(l.q ORDER BY l.n) AS lqtys,
               array_agg(l.n ORDER BY l.n) AS lns
        FROM unnest(p_line_order, p_line_pid, p_line_qty) WITH ORDINALITY AS l(o, pid, q, n)
        WHERE claimed[l.o] AND result[l.o] IS NULL
        GROUP BY l.o ORDER BY l.o
    LOOP
        ok := true;
        short_p := '{}'; short_q := '{}'; short_a := '{}';
        FOR j IN 1..cardinality(r.lpids) LOOP
            IF coalesce(lp_stock[array_position(lp_id, r.lpids[j])], 0) < r.lqtys[j] THEN
                ok := false;
                short_p := short_p || r.lpids[j];
                short_q := short_q || r.lqtys[j];
                short_a := short_a || coalesce(lp_stock[array_position(lp_id, r.lpids[j])],
                                               (SELECT p.stock FROM products p WHERE p.id = r.lpids[j]))::bigint;
            END IF;
        END LOOP;
        IF ok THEN
            total := 0;
            FOR j IN 1..cardinality(r.lpids) LOOP
                lp_stock[array_position(lp_id, r.lpids[j])] :=
                    lp_stock[array_position(lp_id, r.lpids[j])] - r.lqtys[j];
                line_price[r.lns[j]] := lp_price[array_position(lp_id, r.lpids[j])];
                total := total + line_price[r.lns[j]] * r.lqtys[j];
            END LOOP;
            result[r.o] := 'placed';
            placed_pos := placed_pos || r.o;
            placed_tot := placed_tot || total;
        ELSE
            result[r.o] := 'out_of_stock';
            pos := r.o; outcome := 'out_of_stock'; pids := short_p; qtys := short_q; vals := short_a;
            order_id := NULL; order_created_at := NULL; order_status := NULL; order_user := NULL;
            order_total := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;

    -- Claims of requests that placed nothing are released (same transaction: never visible).
    DELETE FROM order_idempotency k
    USING unnest(p_keys) WITH ORDINALITY AS t(k, i)
    WHERE k.idempotency_key = t.k AND claimed[t.i] AND result[t.i] IS DISTINCT FROM 'placed';

    IF cardinality(placed_pos) = 0 THEN
        RETURN;
    END IF;

    -- 4. Write: stock (one UPDATE per product), orders, lines, key links; then return them.
    UPDATE products p SET stock = p.stock - d.q, version = p.version + 1, updated_at = now()
    FROM (
        SELECT l.pid, sum(l.q)::integer AS q
        FROM unnest(p_line_order, p_line_pid, p_line_qty) AS l(o, pid, q)
        WHERE result[l.o] = 'placed' GROUP BY l.pid
    ) d
    WHERE p.id = d.pid;

    RETURN QUERY
    WITH o AS (
        INSERT INTO orders (user_id, total_cents, idempotency_key)
        SELECT p_users[x.o], x.tot, p_keys[x.o]
        FROM unnest(placed_pos, placed_tot) AS x(o, tot) ORDER BY x.o
        RETURNING id, created_at, status, user_id, total_cents, idempotency_key
    ), om AS (
        SELECT o.*, t.i::integer AS i FROM o JOIN unnest(p_keys) WITH ORDINALITY AS t(k, i) ON t.k = o.idempotency_key
    ), ins AS (
        INSERT INTO order_lines (order_id, order_created_at, line_no, product_id, quantity, unit_price_cents)
        SELECT om.id, om.created_at, row_number() OVER (PARTITION BY l.o ORDER BY l.n)::smallint,
               l.pid, l.q, line_price[l.n]
        FROM unnest(p_line_order, p_line_pid, p_line_qty) WITH ORDINALITY AS l(o, pid, q, n)
        JOIN om ON om.i = l.o
    ), link AS (
        UPDATE order_idempotency k SET order_id = om.id, order_created_at = om.created_at
        FROM om WHERE k.idempotency_key = om.idempotency_key
    )
    SELECT om.i::integer, 'placed'::text, om.id, om.created_at, om.status, om.user_id, om.total_cents,
           ls.pids, ls.qtys, ls.prices
    FROM om
    JOIN LATERAL (
        SELECT array_agg(l.pid ORDER BY l.n) AS pids, array_agg(l.q ORDER BY l.n) AS qtys,
               array_agg(line_price[l.n] ORDER BY l.n) AS prices
        FROM unnest(p_line_order, p_line_pid, p_line_qty) WITH ORDINALITY AS l(o, pid, q, n)
        WHERE l.o = om.i
    ) ls ON true;
END
$$;
