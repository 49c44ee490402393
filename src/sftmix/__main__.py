from sftmix.cli import main

raise SystemExit(main())
