from freshroot.cli import main

raise SystemExit(main())
