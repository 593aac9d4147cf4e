"""The rules: their definitions as data (`definitions`), their pure meaning (`meaning`), their SQL twin (`sql`),
and the per-site settings they read (`settings`)."""
