"""The inventory stage: which files matter, what they say is installed, and the merged result."""
