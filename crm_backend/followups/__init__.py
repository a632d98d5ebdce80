"""Post-operative follow-up (随访): plans, enrolments, check-ins the scheduler starts, answers and flags."""
