"""Integrations of the notify service: SMTP."""
