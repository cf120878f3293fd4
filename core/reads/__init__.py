"""Answers to the API's busiest reads, kept by the version of the data they show."""
