"""What several processors share; none of these is a job type."""
