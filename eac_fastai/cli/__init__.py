"The `eac-fastai` command line: the app, and one module per command group, which registers its commands."
from .common import app as app
from . import train, data, results, convert  # noqa: F401  (registers the commands, in --help's order)
