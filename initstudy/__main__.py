from initstudy.cli import main

raise SystemExit(main())
