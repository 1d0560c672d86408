"""`python -m taskyard` is the same as the `taskyard` command."""

from taskyard.cli import main

raise SystemExit(main())
