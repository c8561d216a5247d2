"""Is the system working: beat runs and readiness (`health`), the periodic task table
(`schedules`), alerts to staff (`alerts`), the dashboard's figures (`dashboard`)."""
