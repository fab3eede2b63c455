-- What labels need of each order: names and prices of lines, and each delivery group's address and wishes.
ALTER TABLE order_lines ADD COLUMN name text;
ALTER TABLE order_lines ADD COLUMN unit_price bigint;

CREATE TABLE deliveries (
    order_id        uuid        NOT NULL,
    delivery_index  integer     NOT NULL,
    shop_id         text        NOT NULL,
    address         jsonb       NOT NULL,
    requested_date  date,
    time_slot       text,
    carrier         text        NOT NULL,
    payment_method  text        NOT NULL,
    cod_amount      bigint,
    currency        text        NOT NULL,
    accepted_at     timestamptz NOT NULL,
    PRIMARY KEY (order_id, delivery_index)
);

-- Orders that reached allocation, with how much they got: the ones not full wait for stock, oldest first.
CREATE TABLE allocation_requests (
    order_id       uuid        PRIMARY KEY,
    shop_id        text        NOT NULL,
    requested_at   timestamptz NOT NULL,
    coverage       text        NOT NULL,
    correlation_id uuid        NOT NULL
);
CREATE INDEX allocation_requests_waiting ON allocation_requests (requested_at, order_id) WHERE coverage <> 'full';

-- How a sku must travel (normal, chilled, frozen), set by stock imports.
CREATE TABLE sku_attributes (
    sku       text PRIMARY KEY,
    cool_type text NOT NULL DEFAULT 'normal' CHECK (cool_type IN ('normal', 'chilled', 'frozen'))
);

-- Per-shop shipping calendar and shipper block; shops without a row use the defaults.
CREATE TABLE shops (
    shop_id              text PRIMARY KEY,
    time_zone            text    NOT NULL DEFAULT 'Asia/Tokyo',
    cutoff               time    NOT NULL DEFAULT '15:00',
    closed_weekdays      integer[] NOT NULL DEFAULT '{5,6}',
    closures             date[]  NOT NULL DEFAULT '{}',
    warehouse_prefecture text    NOT NULL DEFAULT '東京都',
    shipper              jsonb
);

ALTER TABLE shipments ADD COLUMN request_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN last_error text;
ALTER TABLE shipments ADD COLUMN delivered_at timestamptz;
ALTER TABLE shipments ADD COLUMN cash_collected bigint;
ALTER TABLE shipments ADD COLUMN flagged text;
CREATE UNIQUE INDEX shipments_tracking_number ON shipments (tracking_number) WHERE tracking_number IS NOT NULL;
