-- An order's mails are found through the UNIQUE (order_id, kind, cause_id) index (an order has a few of them): a
-- second index on order_id cost every claimed mail, and every update of a mail that was not HOT, one more entry.
DROP INDEX mail_log_by_order;
