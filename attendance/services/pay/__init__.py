"""Crew pay: rates and timesheet lines from attendance (`timesheets`), the rules that price
a line (`rules`), maker-checker pay runs (`runs`). Paying out is `payouts`."""
