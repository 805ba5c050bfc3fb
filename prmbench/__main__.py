"""`python -m prmbench` runs the command-line interface."""

from prmbench.cli import main

raise SystemExit(main())
