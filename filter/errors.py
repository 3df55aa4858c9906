"""Errors that reach the user as one line, and vqa's exit statuses."""


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


class Interrupted(VqaError):
    exit_code = 130


#: exit status when --fail-below gates a finished run
EXIT_QUALITY_GATE = 3
