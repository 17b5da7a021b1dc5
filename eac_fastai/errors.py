"User-facing errors: the CLI prints them in one line and exits with their code (2; 3 for a diverged training)."

__all__ = ['UserError', 'TrainingDiverged']

class UserError(Exception):
    "A problem with the user's input (file, row, key) that the user can fix; the message says how."
    exit_code = 2

class TrainingDiverged(UserError):
    "Training stopped because its loss became NaN or infinite (in run folder `run`); the message says where and what."
    exit_code = 3
    def __init__(self, message:str, run=None): super().__init__(message); self.run = run
