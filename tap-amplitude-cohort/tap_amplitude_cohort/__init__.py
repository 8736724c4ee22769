"""Singer tap for Amplitude behavioral cohorts."""
