"""Rate limiters in front of every Graph call; algorithms apart from storage backends."""
