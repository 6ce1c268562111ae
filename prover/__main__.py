from prover.cli import main

raise SystemExit(main())
