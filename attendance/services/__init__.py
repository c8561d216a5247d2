"""Every write of the app lives here, as plain functions with keyword-only arguments."""
