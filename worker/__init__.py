"""The taskiq broker, tasks and the scheduler loop over core/. Not yet available."""
