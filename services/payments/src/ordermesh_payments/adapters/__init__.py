"""Integrations of the payments service: payment gateways."""
