"""`python -m sharedcore_testbed`: the `sharedcore-testbed` command."""

from sharedcore_testbed.cli import main

main()
