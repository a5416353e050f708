"""The `livcr` command."""
