from vestnik.cli import main

raise SystemExit(main())
