"""Accounts: users with roles, API keys and web sessions, and what each role may do."""
