"""Booking: departments, doctors, bookable sessions (schedules) and patients' appointments."""
