from ripples.cli import main

raise SystemExit(main())
