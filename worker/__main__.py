"""`python -m worker` is the `graphworks` command."""

from worker.cli import main

main()
