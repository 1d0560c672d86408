"""The one error the embedded services raise."""


class EmbeddedError(Exception):
    """An embedded service cannot start or be reached; the message is one line."""
