"""ordermesh shipping service: stock, allocation, warehouse requests and tracking."""
