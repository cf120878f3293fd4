"""Events, their recurrence and (later) confirmations."""
