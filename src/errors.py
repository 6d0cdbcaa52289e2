"""The one exception type a user ever sees: printed as a single line, exit status 2."""


class UserError(Exception):
    """Bad input: a config value, a missing file. The message names the key or file."""
