-- An order's row is updated a dozen times in its life (stage, flags, what was paid), its snapshot never but by an edit
-- or a return. Kept inline (compressed, ~1.2 kB of a ~2.1 kB row) the snapshot was written again with every update
-- and left room for no second version on the page, so most updates were not HOT (an entry in every index each).
-- Stored out of line it is written once (an update keeps its TOAST pointer), and fillfactor leaves room on each page
-- for the next versions of its rows.
ALTER TABLE orders ALTER COLUMN snapshot SET STORAGE EXTERNAL;
ALTER TABLE orders SET (fillfactor = 70);

-- History is read by order only (ORDER BY id): its primary key is that index, one index per entry instead of two.
ALTER TABLE order_history DROP CONSTRAINT order_history_pkey;
DROP INDEX order_history_order;
ALTER TABLE order_history ADD PRIMARY KEY (order_id, id);
