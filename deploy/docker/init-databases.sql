-- One database and one login role per service; a role can connect to its own database only.
-- Passwords here are for local compose runs; real deployments inject their own.
CREATE ROLE ordermesh_orders LOGIN PASSWORD 'orders-local';
CREATE ROLE ordermesh_payments LOGIN PASSWORD 'payments-local';
CREATE ROLE ordermesh_shipping LOGIN PASSWORD 'shipping-local';
CREATE ROLE ordermesh_points LOGIN PASSWORD 'points-local';
CREATE ROLE ordermesh_notify LOGIN PASSWORD 'notify-local';
CREATE ROLE ordermesh_console LOGIN PASSWORD 'console-local';
CREATE DATABASE ordermesh_orders OWNER ordermesh_orders;
CREATE DATABASE ordermesh_payments OWNER ordermesh_payments;
CREATE DATABASE ordermesh_shipping OWNER ordermesh_shipping;
CREATE DATABASE ordermesh_points OWNER ordermesh_points;
CREATE DATABASE ordermesh_notify OWNER ordermesh_notify;
CREATE DATABASE ordermesh_console OWNER ordermesh_console;
REVOKE ALL ON DATABASE ordermesh_orders, ordermesh_payments, ordermesh_shipping, ordermesh_points, ordermesh_notify, ordermesh_console FROM PUBLIC;
GRANT CONNECT ON DATABASE ordermesh_orders TO ordermesh_orders;
GRANT CONNECT ON DATABASE ordermesh_payments TO ordermesh_payments;
GRANT CONNECT ON DATABASE ordermesh_shipping TO ordermesh_shipping;
GRANT CONNECT ON DATABASE ordermesh_points TO ordermesh_points;
GRANT CONNECT ON DATABASE ordermesh_notify TO ordermesh_notify;
GRANT CONNECT ON DATABASE ordermesh_console TO ordermesh_console;
