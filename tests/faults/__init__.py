"""The fault matrix (issue 8): cases.py, scenario.py, pipeline.py; tests in test_*.py.

Secrets and member data are checked in every case here (scenario.check_no_member_email_logged);
the per-plugin secret tests stay with their plugins: tests/target/test_target_sandbox.py
(test_no_secret_or_email_is_logged_at_info_or_above) and tests/tap/test_cli.py
(test_logs_carry_no_secret_and_no_email).
"""
