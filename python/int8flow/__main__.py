from int8flow.cli import main

raise SystemExit(main())
