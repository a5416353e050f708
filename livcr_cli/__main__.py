"""`python -m livcr_cli` is `livcr`."""

from livcr_cli import main

main()
