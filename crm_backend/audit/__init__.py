"""Append-only record of who looked at or changed what (PIPL access accountability)."""
