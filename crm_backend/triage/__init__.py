"""Triage: which department, how soon, and (crm_backend/triage/red_flags*) emergencies first."""
