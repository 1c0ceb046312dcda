"""`python -m processor` runs the command line."""

from processor.cli import main

raise SystemExit(main())
