"""ordermesh payments service: payment state per order and a ledger of gateway calls."""
