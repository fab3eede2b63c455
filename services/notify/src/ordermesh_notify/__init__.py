"""ordermesh notify service: customer mails over SMTP, once per cause."""
