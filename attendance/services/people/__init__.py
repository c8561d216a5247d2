"""Members and staff: profiles and channels (`profiles`), the M-Pesa number proven by a code
(`phones`), staff two-factor login (`two_factor`), the staff groups (`roles`)."""
