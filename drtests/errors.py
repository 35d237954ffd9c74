"""Errors a user sees: each carries one line that names the problem and what to do.

The CLI and the pytest plugin print ``str(error)`` and exit non-zero; a traceback is
never the user interface for these.
"""

from __future__ import annotations


class DRError(Exception):
    """Base of every error that is reported to the user as a single line."""

    exit_code = 2


class ProfileError(DRError):
    """The profile file is missing, unreadable or invalid."""


class SafetyError(DRError):
    """A destructive action was refused by the safety rails."""

    exit_code = 3


class EndpointUnreachable(DRError):
    """A PostgreSQL or S3 endpoint did not answer, or refused the credentials."""


class BackupNotFound(DRError):
    """No backup object exists where one was expected."""


class ChecksumMismatch(DRError):
    """A downloaded backup does not match the checksum recorded when it was taken."""


class NoVerifiedBackup(ChecksumMismatch):
    """Every candidate backup failed verification: escalate, nothing was changed."""


class CorruptBackup(DRError):
    """A backup passed its checksum but cannot be restored (truncated or not a dump)."""


class RestoreFailed(DRError):
    """The restore step failed; the target was left as it was or rolled back."""


class EnvironmentUnavailable(DRError):
    """The requested environment cannot be started on this machine."""


class IncompatibleBackup(RestoreFailed):
    """A backup that is not a database of the component being restored, or one written by
    another version of the application than the one installed."""


class RestoreInterrupted(RestoreFailed):
    """The database server or the session went away mid-restore: the backup is not to
    blame, so no older one is tried."""
