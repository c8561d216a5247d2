"""What tests share: factories, helpers that build a state (pay runs, payouts), log in, drive
a browser, run workers, wait. Test modules import from here, never from one another."""
