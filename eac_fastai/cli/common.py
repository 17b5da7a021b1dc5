"The `eac-fastai` app: its callback (--version), the options several commands share, and one-line user errors."
import errno, warnings
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional
import typer
from rich.console import Console
from rich.markup import escape
from ..errors import UserError

__all__ = ['user_errors']

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False, add_completion=False)
console, err_console = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)  # fastai's import

_ENVIRONMENT = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

def user_errors(f):
    "Report a `UserError` as one red line on stderr, without a traceback; exit with its code (2; 3: diverged)."
    @wraps(f)
    def wrapper(*args, **kwargs):
        try:
            try: return f(*args, **kwargs)
            except OSError as e:                       # met outside the checked writes: a full disk, a read-only folder
                if e.errno not in _ENVIRONMENT: raise
                raise UserError(f"{e.filename or 'a file'}: {e.strerror}; check the free space and the permissions "
                                "of the folders involved") from None
        except UserError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code)
    return wrapper

def _version(value:bool):
    if value:
        from .. import __version__
        console.print(f"eac-fastai {__version__}"); raise typer.Exit()

@app.callback()
def main(version: Annotated[bool, typer.Option('--version', callback=_version, is_eager=True,
                                               help="print the version and exit")] = False):
    "EAC (Erasing Attention Consistency) for noisy-label facial expression recognition, on fastai."

RecipeArg = Annotated[str, typer.Argument(help="recipe YAML file, or FILE#cell of a matrix recipe")]
Overrides = Annotated[Optional[list[str]],
                      typer.Argument(help="overrides: key.sub=value (YAML-typed), ~key.sub to delete")]
OutOpt = Annotated[Optional[Path],
                   typer.Option('--out', help="parent of the run directory (default: settings.ini's runs)")]
CheckpointOpt = Annotated[str, typer.Option(help="the run's model: last (the final epoch's) "
                                                 "or best (best evaluation accuracy)")]
OutputOpt = Annotated[Path, typer.Option('-o', '--output', help="CSV to write; image paths are relative to its folder")]
OverwriteOpt = Annotated[bool, typer.Option(help="replace an existing output")]
FaceSizeOpt = Annotated[int, typer.Option(min=16, help="side of the aligned face crops, in pixels")]
FaceMarginOpt = Annotated[float, typer.Option(min=0, max=1, help="share of the face added around the aligned crop "
                                                                 "on each side")]
