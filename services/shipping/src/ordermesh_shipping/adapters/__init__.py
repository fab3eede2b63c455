"""Integrations of the shipping service: warehouses."""
