"""Restore testing of the real backups (``drtests restore-test``): select a recovery point,
restore it into a scratch server with the procedure's own checks, start the application
on the copy and test it, compare it with its source within the RPO. Read-only on every
source; the scratch server is the only thing written."""
