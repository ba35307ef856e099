"""One exception type for mistakes a user can fix (bad config, missing file, bad checkpoint).

The CLI turns a `UserError` into a one-line message and exit code 2 instead of a traceback.
"""


class UserError(Exception):
    """An error caused by input the user controls; the message says what to do."""
