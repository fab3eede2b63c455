-- One row per order whose payment was opened (an authorization's or credit check's intent) or cancelled here. Both
-- write it first, in the statement that opens the payment and before the cancellation reads the payment, so that
-- whichever comes second waits for the other to commit and then sees it: the opening finds `cancelled`, or the
-- cancellation finds the payment. (A read alone cannot see a row another transaction is about to commit.)
CREATE TABLE order_gates (
    order_id  uuid    PRIMARY KEY,
    cancelled boolean NOT NULL DEFAULT false
);
