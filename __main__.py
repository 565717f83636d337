"""`python -m subledger`: the same command line as `subledger`."""

from subledger.api.cli.main import main

main()
