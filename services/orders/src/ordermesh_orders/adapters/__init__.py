"""Integrations of the orders service: staff HTTP endpoints and shop webhooks."""
