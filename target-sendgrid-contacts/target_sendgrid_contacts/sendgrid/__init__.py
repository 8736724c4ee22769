"""HTTP access to the SendGrid Marketing API (no singer_sdk imports here)."""
