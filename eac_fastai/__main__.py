"`python -m eac_fastai …` is `eac-fastai …` (how torchrun and accelerate launch the training processes)."
from .cli import app

app(prog_name='eac-fastai')
