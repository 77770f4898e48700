"""`python -m graphworks` is the `graphworks` command."""

from graphworks.cli import main

main()
