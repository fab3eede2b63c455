"""Local stand-ins for the outside world: card payment gateway, warehouse and SMTP server."""
