"""Staff accounts, teams, console sessions and login throttling."""
