"User-facing errors: the CLI prints them in one line and exits with code 2."

__all__ = ['UserError']

class UserError(Exception):
    "A problem with the user's input (file, row, key) that the user can fix; the message says how."
