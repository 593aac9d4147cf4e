"""The rollup, in the order it runs: `job` (one scheduled pass) → `chunks` (a site's backlog, chunk by chunk)
→ `fold` (identity, facts, sessions, cart; its SQL in `fold_sql`, its scratch tables in `scratch`) → `judge`
(memberships, enters and exits)."""
