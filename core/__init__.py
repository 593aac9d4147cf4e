"""The foundation both domains stand on, and which imports neither: settings, the database (engine, per-request
connection, the whole schema and its migrations, SQL that differs by dialect, locks, planner hints), errors,
times, sites and authentication, the app factory and the `cohortly` command group."""
