"""HTTP client for Amplitude's Behavioral Cohorts API (no Singer SDK imports)."""
