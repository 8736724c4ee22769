"""Singer target for SendGrid Marketing contacts."""
