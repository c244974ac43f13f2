from raysweep.cli import main

raise SystemExit(main())
