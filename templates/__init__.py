"""Pipeline templates (issue 4)."""
