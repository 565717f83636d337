"""`python -m subledger`: the same command line as `subledger`."""

from subledger.api.cli import main

main()
