"""Errors that reach the user as one line, and vqa's exit statuses.

Every failure a session raises is a :class:`VqaError` subclass with an
``exit_code`` (the CLI's exit status) and, once the session has ended, a
``result`` attribute (the :class:`vqa_filter.Result`, with every frame scored
before the failure)."""


class VqaError(Exception):
    """A failure with a one-line message for the user (no traceback)."""

    exit_code = 1


class UsageError(VqaError):
    exit_code = 2


class FfmpegNotFound(VqaError):
    pass


class FfmpegTooOld(VqaError):
    pass


class ProbeError(VqaError):
    """An input that is missing, unreadable, not video, or has no video stream."""


class StreamError(VqaError):
    """The frame stream from ffmpeg ended badly (truncated, unreadable)."""


class FfmpegFailed(VqaError):
    """ffmpeg exited with an error or was killed; ``exit_code`` is its status
    in the inline form (as the CLI exits), 1 for ``compare``."""


class ScoringFailed(VqaError):
    """vqa's own scoring failed (a bug or an unusable frame format)."""


class Interrupted(VqaError):
    exit_code = 130


#: exit status when --fail-below gates a finished run
EXIT_QUALITY_GATE = 3


class QualityGateFailed(VqaError):
    """The finished run's pooled score is below ``--fail-below``."""

    exit_code = EXIT_QUALITY_GATE
