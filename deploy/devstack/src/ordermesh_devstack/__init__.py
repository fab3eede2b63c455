"""Local runtime of ordermesh: real Kafka and PostgreSQL without Docker, the outside-world sandboxes, demo and benchmark."""
