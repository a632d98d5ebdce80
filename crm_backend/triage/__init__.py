"""Triage: red flags that send a patient to emergency care, departments and urgency (issue 14)."""
