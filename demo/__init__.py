"""The demo: a small shop with the snippet embedded, and synthetic visitors for it."""
