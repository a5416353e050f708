"""The operator's console: a read-mostly web view of the hub's metadata on its own listener."""
