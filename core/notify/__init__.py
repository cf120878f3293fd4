"""Who gets what: audience resolution now; templates, jobs, deliveries and channels next."""
