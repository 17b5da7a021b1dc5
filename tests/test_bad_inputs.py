"""The catalogue of bad inputs a demanding user tries (CSVs, images, recipes, CLI paths, checkpoints, concurrent and
interrupted runs, a full disk, read-only outputs): each case runs the real CLI and must exit with its code (2: the
user's to fix; 3: training diverged), say what is wrong and where, print no traceback, and leave the output folder
absent and every existing file unchanged. Then the behaviours behind some of them, tested in more detail."""
import json, os, pickle, resource, shutil, subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
import pandas as pd, pytest, torch
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data.demo import DemoSpec, make_demo_dataset
from eac_fastai.errors import TrainingDiverged
from eac_fastai.models.weights import load_torch_file
from eac_fastai.training.fit import train_recipe
from eac_fastai.training.recipe import load_recipe
from eac_fastai.training.runs import RunLock
from test_faces import panned_video, photos

RECIPE = ("data: {{csv: {csv}, img_size: 32, bs: 16}}\nmodel: {{arch: resnet10_narrow}}\n"
          "train: {{epochs: 1, lr: 1.0e-3, device: cpu}}\n")

class Evil:
    "Pickled, it would run a command when loaded."
    def __reduce__(self): return (os.system, ('touch /tmp/eac-fastai-pwned',))

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "Shared, never modified: settings, a demo dataset, a recipe over it, a finished run and an unfinished copy."
    base = tmp_path_factory.mktemp('catalogue')
    (base/'settings.ini').write_text(f"[eac_fastai]\ndata = {base/'data'}\nweights = {base/'weights'}\n"
                                     f"runs = {base/'runs'}\n")
    old = os.environ.get('EAC_FASTAI_SETTINGS')
    os.environ['EAC_FASTAI_SETTINGS'] = str(base/'settings.ini')
    csv = make_demo_dataset(base/'ds', DemoSpec(n_train=8, n_valid=4, n_test=2, size=32))
    (base/'r.yaml').write_text(RECIPE.format(csv=csv))
    (base/'matrix.yaml').write_text("base: r.yaml\nmatrix:\n  m:\n    eac: {method: eac}\n"
                                    "    base: {method: baseline}\n")
    run = train_recipe(load_recipe(base/'r.yaml'), base/'runs0')
    unfinished = base/'unfinished'
    shutil.copytree(run, unfinished)
    for f in ('metrics.json', 'export.pkl', 'preds_valid.csv'): (unfinished/f).unlink()
    ro = _read_only_folder(base/'ro', {'run': run, 'unfinished': unfinished})
    yield dict(base=base, csv=csv, ds=csv.parent, recipe=base/'r.yaml', run=run, unfinished=unfinished, ro=ro)
    if ro is not None and os.geteuid() == 0: subprocess.run(['umount', str(ro)], check=True)
    if old is None: del os.environ['EAC_FASTAI_SETTINGS']
    else: os.environ['EAC_FASTAI_SETTINGS'] = old

def _read_only_folder(path:Path, copies:dict) -> Path|None:
    """A folder holding copies of `copies` (name → folder) that this process cannot write to: without write
    permission, or, for root (whom permissions do not stop), a read-only tmpfs; None where neither can be made."""
    path.mkdir()
    if os.geteuid() == 0 and subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', str(path)],
                                            capture_output=True).returncode != 0: return None
    for name, src in copies.items(): shutil.copytree(src, path/name)
    if os.geteuid() == 0: subprocess.run(['mount', '-o', 'remount,ro', str(path)], check=True)
    else:
        for p in [path, *path.rglob('*')]: p.chmod(p.stat().st_mode & ~0o222)
    return path

@dataclass
class W:
    "A case's view of the world: the shared files, its own folder `case`, and `out`, which must stay absent."
    base: Path; csv: Path; ds: Path; recipe: Path; run: Path; unfinished: Path; ro: Path|None; case: Path; out: Path

    def file(self, name:str, content:str|bytes) -> Path:
        "A file in the case's folder."
        p = self.case/name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        return p

    def labels(self, change:Callable|str|bytes) -> Path:
        "The demo CSV changed by `change(df) -> df` (or replaced by raw text), in the case's folder."
        if not callable(change): return self.file('labels.csv', change)
        df = pd.read_csv(self.csv, dtype=str, keep_default_na=False)
        return self.file('labels.csv', change(df.copy()).to_csv(index=False))

    def data(self, change, *overrides) -> list[str]:
        "Recipe overrides training on the changed CSV, images still in the shared dataset."
        return [str(self.recipe), f'data.csv={self.labels(change)}', f'data.root={self.ds}', *overrides]

    def train(self, *args) -> list[str]: return ['train', *args, '--out', str(self.out)]
    def train_data(self, change, *overrides) -> list[str]: return self.train(*self.data(change, *overrides))
    def check_data(self, change, *overrides) -> list[str]: return ['check-data', *self.data(change, *overrides)]
    def recipe_file(self, text:str, name='bad.yaml') -> str: return str(self.file(name, text))

    def run_copy(self, finished:bool=False, change:Callable|None=None) -> Path:
        "A copy of the finished or unfinished run in the case's folder, changed by `change(run)`."
        run = self.case/'run'
        shutil.copytree(self.run if finished else self.unfinished, run)
        if change: change(run)
        return run

    def checkpoint(self, content, name='last.pth', finished=True) -> Path:
        "A run copy whose `models/<name>` is replaced: bytes, or an object saved with torch.save."
        def put(run):
            f = run/'models'/name
            if isinstance(content, bytes): f.write_bytes(content)
            elif content == 'folder': f.unlink(); f.mkdir()
            else: torch.save(content, f)
        return self.run_copy(finished, put)

    def images(self, n_bad=0, n_good=1) -> Path:
        "A folder of `n_good` readable and `n_bad` unreadable images."
        d = self.case/'imgs'; d.mkdir()
        for i in range(n_good): shutil.copy(next(self.ds.rglob('*.png')), d/f'good{i}.png')
        for i in range(n_bad): (d/f'bad{i}.png').write_bytes(b'\x89PNG not really')
        return d

    def photo(self, name:str='coffee', folder:str='photos') -> Path:
        "A registry photo (`test_faces.photos`: astronaut, hopper, camera; coffee has no face) in `folder/<name>.png`."
        (self.case/folder).mkdir(parents=True, exist_ok=True)
        photos()[name].save(self.case/folder/f'{name}.png')
        return self.case/folder/f'{name}.png'

    def video(self, name='clip.mp4', damaged:bool=False) -> Path:
        "A generated video of a face (`test_faces.panned_video`); `damaged`: 4 kB zeroed in its middle."
        clip = panned_video(self.case/name, n=24 if damaged else 3)
        if damaged:
            b = bytearray(clip.read_bytes()); b[len(b)//2:len(b)//2 + 4000] = bytes(4000); clip.write_bytes(bytes(b))
        return clip

def _drop(col): return lambda df: df.drop(columns=col)
def _set(row, col, value):
    def f(df): df.loc[row, col] = value; return df
    return f
def _split(value, which='valid'): return lambda df: df.assign(split=df.split.replace(which, value))
def _train_label(value, col='label'):
    def f(df): df.loc[df.split == 'train', col] = df.loc[df.split == 'train', col].replace('Fear', value); return df
    return f
def _no_train_class(cls='Fear'): return lambda df: df[~((df.split == 'train') & (df.label == cls))]
def _few(n): return lambda df: pd.concat([df[df.split == 'train'].head(n), df[df.split != 'train']])

@dataclass
class Case:
    id: str
    args: Callable[[W], list[str]]                     # the command line, made from the world
    words: tuple[str, ...]                             # what the message must say
    code: int = 2
    hold: Callable[[W], Path]|None = None              # a run folder locked by this process while the command runs
    fsize: int|None = None                             # the largest file the command may write (a full disk)
    ro: bool = False                                   # uses the read-only folder
    settings: str|bytes|None = None                    # the settings.ini the command reads instead of the world's
    env: dict[str, str]|None = None                    # environment variables of the command ({case}: its folder)

def C(id, args, *words, code=2, **kw): return Case(id, args, words, code, **kw)
def O(id, overrides, *words): return C(id, lambda w: w.train(str(w.recipe), *overrides), *words)   # bad overrides

RECIPES = [
    O('unknown-key', ['no_such=1'], 'no_such: unknown key'),
    O('unknown-nested-key', ['data.batch=8'], 'data.batch: unknown key'),
    O('wrong-type', ['data.bs=abc'], 'data.bs', 'integer'),
    O('bs-zero', ['data.bs=0'], 'data.bs', 'greater than or equal to 1'),
    O('lr-negative', ['train.lr=-1'], 'train.lr', "must be positive or 'find'"),
    O('lr-word', ['train.lr=fast'], 'train.lr'),
    O('epochs-zero', ['train.epochs=0'], 'train.epochs'),
    O('method-unknown', ['method=mixup'], 'method', "'eac'"),
    O('arch-unknown', ['model.arch=resnet19'], 'model.arch', 'resnet18'),
    O('valid-split-unknown', ['data.valid_split=holdout'], 'data.valid_split'),
    O('mean-one-value', ['data.mean=[0.5]'], 'data.mean: give 3 values'),
    O('std-zero', ['data.std=[0,0,0]'], 'data.std: values must be > 0'),
    O('std-nan', ['data.std=[.nan,1,1]'], 'data.std.0', 'finite number'),
    O('mean-text', ['data.mean=grey'], 'data.mean'),
    C('lr-find-range', lambda w: w.train(str(w.recipe), 'train.lr_find.start_lr=1', 'train.lr_find.end_lr=0.1'),
      'start_lr (1) must be below end_lr (0.1)'),
    O('lr-find-num-it', ['train.lr_find.num_it=5'], 'train.lr_find.num_it'),
    C('duplicate-key', lambda w: w.train(w.recipe_file(f"base: {w.recipe}\ntrain:\n  epochs: 2\n  epochs: 3\n")),
      'bad.yaml:4', "key 'epochs' is given twice (lines 3 and 4)"),
    C('duplicate-section', lambda w: w.train(w.recipe_file(f"base: {w.recipe}\neac: {{lam: 1}}\neac: {{lam: 2}}\n")),
      "key 'eac' is given twice (lines 2 and 3)"),
    C('tabs', lambda w: w.train(w.recipe_file("data:\n\tdemo: {}\n")), 'bad.yaml:2: not valid YAML', 'not tabs'),
    C('yaml-list', lambda w: w.train(w.recipe_file("- a\n- b\n")), 'a recipe is a mapping of sections'),
    C('yaml-empty', lambda w: w.train(w.recipe_file("")), 'data: Field required'),
    C('yaml-binary', lambda w: w.train(w.recipe_file(b'\xff\xfe\x00bad', 'bin.yaml')), 'cannot read the recipe'),
    C('yaml-unclosed', lambda w: w.train(w.recipe_file("data: {csv: x\n")), 'not valid YAML'),
    C('recipe-missing', lambda w: w.train(str(w.case/'none.yaml')), 'recipe file not found'),
    C('recipe-folder', lambda w: w.train(str(w.case)), 'recipe file not found (it is a folder)'),
    C('base-missing', lambda w: w.train(w.recipe_file("base: nothere.yaml\n")), 'nothere.yaml: recipe file not found'),
    C('base-cycle', lambda w: w.train(w.recipe_file("base: bad.yaml\n")), 'includes itself'),
    C('base-number', lambda w: w.train(w.recipe_file("base: [1, 2]\n")), 'base must be a recipe file'),
    C('matrix-no-cell', lambda w: w.train(str(w.base/'matrix.yaml')), 'is a matrix of 2 recipes'),
    C('matrix-unknown-cell', lambda w: w.train(f"{w.base/'matrix.yaml'}#mixup"), "no cell 'mixup'"),
    C('matrix-pattern', lambda w: w.train(f"{w.base/'matrix.yaml'}#e*"), 'is a pattern; name one cell'),
    C('not-a-matrix-cell', lambda w: w.train(f"{w.recipe}#eac"), 'is not a matrix'),
    O('override-no-equals', ['eac.lam'], "override 'eac.lam' is not of the form"),
    O('override-into-value', ['data.bs.x=1'], 'data.bs is a value, not a section'),
    O('override-empty-key', ['data..bs=1'], 'is not of the form'),
    O('csv-and-demo', ['data.demo={}'], 'set exactly one of data.csv and data.demo'),
    O('no-data', ['~data.csv'], 'set exactly one of data.csv and data.demo'),
    O('fp16-on-cpu', ['train.precision=fp16'], 'needs a CUDA device'),
    O('cuda-missing', ['train.device=cuda'], 'no CUDA device'),
    O('device-unknown', ['train.device=tpu'], 'train.device'),
    O('wd-bn-bias-adam', ['train.wd_bn_bias=false'], 'train', 'fastai'),
    C('eac-with-flip', lambda w: w.train(str(w.recipe), 'augment.flip={p: 0.5}'),
      'method eac makes the flipped view itself'),
    O('eac-basic-flip', ['augment.basic.ops=[flip]'], 'remove flip'),
    O('gamma-zero', ['train.gamma=0'], 'train.gamma'),
    O('pct-start-one', ['train.pct_start=1'], 'train.pct_start'),
    O('schedule-unknown', ['train.schedule=linear'], 'train.schedule'),
    O('opt-unknown', ['train.opt=lion'], 'train.opt'),
    C('eval-subset-short', lambda w: w.train(str(w.recipe), 'train.eval_subset={full_last: 2}'),
      'train.eval_subset.full_last'),
    O('img-size-tiny', ['data.img_size=4'], 'data.img_size'),
    O('demo-size', ['~data.csv', 'data.demo={size: 4}'], 'data.demo.size'),
    O('demo-noise', ['~data.csv', 'data.demo={noise: 2}'], 'data.demo.noise'),
    O('seed-text', ['seed=abc'], 'seed'),
    O('tags-list', ['tags=[a]'], 'tags'),
    O('lam-negative', ['eac.lam=-1'], 'eac.lam'),
    O('ramp-too-long', ['eac.ramp=5'], 'eac.ramp'),
    O('consistency-unknown', ['eac.consistency=cosine'], 'eac.consistency'),
    O('scn-beta', ['method=scn', 'scn.beta=1.5'], 'scn.beta'),
    O('rul-dim', ['method=rul', 'rul.dim=0'], 'rul.dim'),
    O('section-of-other-method', ['scn.nonsense=1'], 'scn.nonsense: unknown key'),
    O('classes-twice', ['data.classes=[Happy,Happy]'], 'more than once'),
    O('classes-missing-one', ['data.classes=[Happy,Sad]'], 'not among the classes'),
    C('weights-missing', lambda w: w.train(str(w.recipe), f"model.weights={w.case/'nope.pth'}"),
      'weights file not found'),
    C('weights-folder', lambda w: w.train(str(w.recipe), f'model.weights={w.case}'), 'it is a folder'),
    C('weights-with-code', lambda w: w.train(str(w.recipe),
                                             f"model.weights={w.file('evil.pkl', pickle.dumps(Evil()))}"),
      'refused to load', 'could run code'),
    C('weights-torch-with-code', lambda w: w.train(str(w.recipe), f"model.weights={_saved(w, Evil())}"),
      'refused to load', 'could run code'),
    C('weights-empty', lambda w: w.train(str(w.recipe), f"model.weights={w.file('e.pth', b'')}"),
      'not a PyTorch checkpoint'),
    C('weights-other-model', lambda w: w.train(str(w.recipe), f"model.weights={_saved(w, {'conv.w': torch.zeros(3)})}"),
      'does not fit the', 'backbone'),
    O('accumulate-zero', ['train.accumulate=0'], 'train.accumulate', 'greater than or equal to 1'),
    O('early-stop-on-test', ['data.valid_split=test', 'train.early_stop={}'],
      'train.early_stop: data.valid_split is test', 'inflates'),
    O('early-stop-subset', ['train.early_stop={}', 'train.eval_subset={}'], 'train.early_stop: train.eval_subset'),
    O('early-stop-monitor', ['train.early_stop={monitor: top5}'], 'train.early_stop.monitor'),
    O('early-stop-patience', ['train.early_stop={patience: 0}'], 'train.early_stop.patience'),
    C('compile-no-compiler', lambda w: w.train(str(w.recipe), 'train.compile=true'), 'train.compile',
      'finds no compiler', env={'CXX': 'no-such-c++'}),
    O('compile-cudagraphs-cpu', ['train.compile=cudagraphs'], 'train.compile: cudagraphs needs CUDA'),
    O('compile-unknown', ['train.compile=fast'], 'train.compile'),
    O('logger-unknown', ['train.loggers=[csv, mlflow]'], 'train.loggers.1', "'tensorboard'"),
    C('wandb-no-login', lambda w: w.train(str(w.recipe), 'train.loggers=[wandb]'), 'train.loggers: wandb has no login',
      'WANDB_MODE=offline', env={'HOME': '{case}', 'WANDB_MODE': '', 'WANDB_API_KEY': '', 'NETRC': '{case}/netrc'}),
    O('weights-imagenet-arch', ['model.weights=imagenet'], 'model.weights=imagenet',
      'no pretrained weights for resnet10_narrow'),
    O('weights-torchvision-unknown', ['model.arch=resnet18', 'model.weights=IMAGENET1K_V9'],
      'model.weights=IMAGENET1K_V9', "not one of torchvision's resnet18 weights"),
    C('weights-imagenet-offline', lambda w: w.train(str(w.recipe), 'model.arch=resnet18', 'model.weights=imagenet'),
      'could not be downloaded', 'hub/checkpoints/resnet18-f37072fd.pth',
      env={'TORCH_HOME': '{case}/torch', 'https_proxy': 'http://127.0.0.1:9', 'no_proxy': ''}),
    C('weights-text', lambda w: w.train(str(w.recipe), f"model.weights={w.file('w.pth', 'hello')}"),
      'not a PyTorch checkpoint'),
    C('out-under-a-file', lambda w: ['train', str(w.recipe), '--out', str(w.file('afile', 'x')/'runs')],
      'is a file, not a folder'),
    C('resume-with-recipe', lambda w: ['train', str(w.recipe), '--resume', str(w.unfinished)], 'give no recipe'),
    C('resume-with-nproc', lambda w: ['train', '--resume', str(w.unfinished), '--nproc', '2'], 'drop --nproc'),
    C('no-recipe', lambda w: ['train'], 'give a recipe'),
    C('nproc-scn', lambda w: ['train', str(w.recipe), 'method=scn', '--nproc', '2', '--out', str(w.out)],
      'method scn cannot train in several processes'),
    C('validate-missing', lambda w: ['validate', str(w.case/'none.yaml')], 'recipe file not found'),
    C('validate-bad-key', lambda w: ['validate', str(w.recipe), 'data.bss=1'], 'data.bss: unknown key'),
    O('lam-infinite', ['eac.lam=.inf'], 'eac.lam', 'finite'),
    O('lr-nan', ['train.lr=.nan'], 'train.lr'),
    O('epochs-fraction', ['train.epochs=1.5'], 'train.epochs'),
    O('bs-mapping', ['data.bs={a: 1}'], 'data.bs'),
    O('workers-negative', ['data.num_workers=-1'], 'data.num_workers'),
    O('sampler-unknown', ['data.sampler=weighted'], 'data.sampler'),
    C('classes-extra', lambda w: w.train(str(w.recipe), 'data.classes=[Anger,Disgust,Fear,Happiness,Neutral,Sadness,'
                                                        'Surprise,Contempt]'), 'Contempt have no training images'),
    C('resume-a-file', lambda w: ['train', '--resume', str(w.recipe)], 'not a run directory'),
    C('sweep-compile-cpu', lambda w: ['sweep', str(w.recipe), 'train.compile=cudagraphs', 'seed=0,1', '--out',
                                      str(w.out)], 'train.compile: cudagraphs needs CUDA'),
    C('sweep-no-cell', lambda w: ['sweep', f"{w.base/'matrix.yaml'}#zz*", '--out', str(w.out)], "no cell 'zz*'"),
    C('lr-find-bad-recipe', lambda w: ['lr-find', str(w.recipe), 'train.lr_find.num_it=1', '--out', str(w.out)],
      'train.lr_find.num_it'),
]

def _saved(w, obj, name='sd.pth') -> Path:
    torch.save(obj, w.case/name); return w.case/name

# each CSV problem: by `train` (nothing written) and by `check-data` (listed)
CSV_PROBLEMS = [
    ('label-spaces', _train_label('Fear '), ("has spaces around the class name", "'Fear '")),
    ('label-leading-space', _train_label(' Fear'), ("has spaces around the class name",)),
    ('clean-label-unknown', _set(0, 'clean_label', 'Contempt'), ('`clean_label` on line(s) 2', "'Contempt'")),
    ('clean-label-spaces', _set(0, 'clean_label', 'Happy '), ('`clean_label` on line(s) 2 has spaces',)),
    ('missing-column', _drop('split'), ('missing column(s) split',)),
    ('missing-two-columns', _drop(['split', 'label']), ('missing column(s) label, split',)),
    ('header-only', lambda df: df.head(0), ('has a header but no rows',)),
    ('empty-file', '', ('cannot parse as CSV',)),
    ('binary-file', b'\x00\x01\xff\xfe' * 50, ('cannot parse as CSV',)),
    ('ragged-rows', 'image,label,split\na.png,Happy,train,extra,more\n', ('cannot parse as CSV',)),
    ('unknown-split', _set(3, 'split', 'holdout'), ('`split` must be one of', 'line(s) 5')),
    ('split-spaces', _set(3, 'split', 'train '), ('`split` must be one of',)),
    ('empty-label', _set(3, 'label', ''), ('empty `label` on line(s) 5',)),
    ('empty-image', _set(3, 'image', ''), ('empty `image` on line(s) 5',)),
    ('empty-split', _set(3, 'split', ''), ('empty `split` on line(s) 5',)),
    ('duplicate-image', lambda df: _set(3, 'image', df.image[0])(df), ('listed more than once',)),
    ('missing-image', _set(3, 'image', 'nowhere/x.png'), ('not found under', 'line 5')),
    ('image-is-folder', _set(3, 'image', '.'), ('not found under',)),
    ('no-train-rows', lambda df: df[df.split != 'train'], ('no rows with split=train',)),
    ('no-valid-rows', lambda df: df[df.split != 'valid'], ('no rows with split=valid',)),
    ('class-without-training-images', _no_train_class(), ('Fear have no training images',)),
    ('latin-1', b'image,label,split\nimages/train/train_00000.png,Col\xe8re,train\n', ('cannot parse as CSV',)),
    ('header-capitalised', lambda df: df.rename(columns=str.capitalize), ('missing column(s) image, label, split',)),
    ('valid-only-class', lambda df: _set(df.index[df.split == 'valid'][0], 'label', 'Contempt')(df),
     ('Contempt have no training images',)),
]

CSV_CASES = [c for name, change, words in CSV_PROBLEMS for c in (
    C(f'train-csv-{name}', lambda w, ch=change: w.train_data(ch), *words),
    C(f'check-data-{name}', lambda w, ch=change: w.check_data(ch), *words))]

def _broken_image(w, kind) -> list[str]:
    "Recipe arguments over a CSV whose line 5 names a broken image of `kind`, made in the case's folder."
    img = w.case/'img'/('bad.jpg' if kind in ('truncated', 'wrong-extension') else 'bad.png')
    img.parent.mkdir(parents=True)
    good = next(w.ds.rglob('*.png'))
    if kind == 'garbage': img.write_bytes(b'not an image at all')
    elif kind == 'truncated':
        Image.open(good).convert('RGB').resize((64, 64)).save(img, quality=95)
        img.write_bytes(img.read_bytes()[:len(img.read_bytes())//2])
    elif kind == 'empty': img.write_bytes(b'')
    elif kind == 'wrong-extension': img.write_bytes(b'GIF89a' + good.read_bytes()[6:40])
    return w.data(lambda df: _set(3, 'image', str(img))(df), *(['data.cache=true'] if kind == 'truncated' else []))

IMAGE_CASES = [c for kind in ('garbage', 'truncated', 'empty', 'wrong-extension') for c in (
    C(f'train-image-{kind}', lambda w, k=kind: w.train(*_broken_image(w, k)), 'not readable images', 'line 5'),
    C(f'check-data-image-{kind}', lambda w, k=kind: ['check-data', *_broken_image(w, k)], 'not readable images',
      'line 5'))]

DATA_CASES = [
    C('csv-missing', lambda w: w.train(str(w.recipe), f"data.csv={w.case/'none.csv'}"), 'label CSV not found'),
    C('markup-in-a-path', lambda w: w.train(str(w.recipe), f"data.csv={w.case/'[bold]x[/bold].csv'}"),
      '[bold]x[/bold].csv: label CSV not found'),
    C('csv-folder', lambda w: w.train(str(w.recipe), f'data.csv={w.case}'), 'label CSV not found (it is a folder)'),
    C('root-missing', lambda w: w.train(str(w.recipe), f"data.root={w.case/'nowhere'}"),
      'not found under', 'set data.root'),
    C('no-training-batch', lambda w: w.train(str(w.recipe), 'data.bs=64', 'data.drop_last=true'),
      'no training batch', 'lower data.bs'),
    C('batch-of-one', lambda w: w.train(*w.data(_few(17), 'data.bs=16', 'data.img_size=8')),
      'a last batch of one image',
      'data.drop_last=true'),
    C('batch-of-one-rul', lambda w: w.train(*w.data(_few(17), 'data.bs=16', 'method=rul')), 'last batch of one',
      'data.drop_last=true'),
    C('valid-split-test-absent', lambda w: w.train_data(lambda df: df[df.split != 'test'], 'data.valid_split=test'),
      'no rows with split=test'),
    C('check-data-recipe-missing', lambda w: ['check-data', str(w.case/'none.yaml')], 'recipe file not found'),
]

def _wrong_model(): return {'0.0.weight': torch.zeros(1, 3, 3, 3)}

# a run's checkpoint replaced: predict, report and label-issues read models/last.pth
CHECKPOINTS = [
    ('pickle-with-code', lambda: pickle.dumps(Evil()), ('refused to load', 'could run code')),
    ('torch-with-code', lambda: Evil(), ('refused to load', 'could run code')),
    ('truncated', lambda: b'PK\x03\x04' + b'\x00' * 20, ('not a PyTorch checkpoint',)),
    ('empty', lambda: b'', ('not a PyTorch checkpoint',)),
    ('text', lambda: b'hello', ('not a PyTorch checkpoint',)),
    ('other-model', _wrong_model, ("does not fit the recipe's model",)),
    ('list', lambda: [torch.zeros(2)], ('expected a state_dict',)),
    ('folder', lambda: 'folder', ('models/last.pth', 'finish')),
]

def _checkpoint_cases():
    out = []
    for name, make, words in CHECKPOINTS:
        out += [C(f'predict-checkpoint-{name}', lambda w, m=make: ['predict', str(w.checkpoint(m())), str(w.images()),
                                                                  '-o', str(w.out/'p.csv')], *words),
                C(f'report-checkpoint-{name}', lambda w, m=make: ['report', str(w.checkpoint(m())),
                                                                 '-o', str(w.out/'r.html')], *words),
                C(f'label-issues-checkpoint-{name}', lambda w, m=make: ['label-issues', str(w.checkpoint(m())),
                                                                       '-o', str(w.out/'l.csv')], *words)]
    return out

def _foreign_onnx(w) -> Path:
    "A valid ONNX model (an identity) without eac-fastai's metadata."
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 3, 32, 32])
    model = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [x], [y]))
    onnx.save(model, w.case/'foreign.onnx')
    return w.case/'foreign.onnx'

def _strip_mean_class(run):
    "The run's metrics.json as eac-fastai wrote it before it recorded the mean class accuracy."
    m = json.loads((run/'metrics.json').read_text())
    (run/'metrics.json').write_text(json.dumps({k: v for k, v in m.items() if 'class_accuracy' not in k}))

def _edit(run, old, new):
    f = run/'recipe.yaml'; f.write_text(f.read_text().replace(old, new))

RUN_CASES = [*_checkpoint_cases(),
    C('predict-no-run', lambda w: ['predict', str(w.case/'nothing'), str(w.images())], 'no such run directory'),
    C('predict-not-a-run', lambda w: ['predict', str(w.case), str(w.images())], 'not a run directory'),
    C('predict-no-checkpoint', lambda w: ['predict', str(w.run_copy(True, lambda r: (r/'models'/'last.pth').unlink())),
                                          str(w.images())], 'no models/last.pth'),
    C('predict-checkpoint-choice', lambda w: ['predict', str(w.run), str(w.images()), '--checkpoint', 'first'],
      "checkpoint 'first'"),
    C('predict-bs-zero', lambda w: ['predict', str(w.run), str(w.images()), '--bs', '0'], '--bs'),
    C('predict-image-missing', lambda w: ['predict', str(w.run), str(w.case/'x.png')], 'no such image file'),
    C('predict-empty-folder', lambda w: ['predict', str(w.run), str(w.images(0, 0))], 'no image files'),
    C('predict-unreadable-all-listed', lambda w: ['predict', str(w.run), str(w.images(3, 2))],
      '3 of 5 file(s) are not readable images', 'bad0.png', 'bad1.png', 'bad2.png'),
    C('predict-export-untrusted', lambda w: ['predict', str(w.run/'export.pkl'), str(w.images())], '--trust-pickle'),
    C('predict-export-not-learner', lambda w: ['predict', str(w.file('x.pkl', pickle.dumps([1]))), str(w.images()),
                                               '--trust-pickle'], 'not a learner exported by fastai'),
    C('predict-output-exists', lambda w: ['predict', str(w.run), str(w.images()), '-o', str(w.file('p.csv', 'x'))],
      'already exists', '--overwrite'),
    C('predict-output-folder', lambda w: ['predict', str(w.run), str(w.images()), '-o', str(w.case)], 'is a folder'),
    C('predict-output-under-file', lambda w: ['predict', str(w.run), str(w.images()),
                                              '-o', str(w.file('f', 'x')/'p.csv')], 'is a file, not a folder'),
    C('predict-recipe-broken', lambda w: ['predict', str(w.run_copy(True, lambda r: (r/'recipe.yaml').write_text(
        'data: [\n'))), str(w.images())], 'recipe.yaml:', 'not valid YAML'),
    C('predict-recipe-unknown-key', lambda w: ['predict', str(w.run_copy(True, lambda r: _edit(
        r, 'seed:', 'sed: 1\nseed:'))), str(w.images())], 'sed: unknown key'),
    C('predict-metrics-broken', lambda w: ['predict', str(w.run_copy(True, lambda r: (r/'metrics.json').write_text(
        '{"classes": ['))), str(w.images())], 'metrics.json'),
    C('predict-no-classes', lambda w: ['predict', str(w.unfinished), str(w.images())], 'class order'),
    C('predict-onnx-not-onnx', lambda w: ['predict', str(w.file('m.onnx', b'not onnx')), str(w.images())],
      'm.onnx: not an ONNX model'),
    C('predict-onnx-foreign', lambda w: ['predict', str(_foreign_onnx(w)), str(w.images())],
      'no class names and image size in its metadata'),
    C('predict-onnx-missing', lambda w: ['predict', str(w.case/'none.onnx'), str(w.images())], 'no such ONNX file'),
    C('export-not-a-run', lambda w: ['export', str(w.case), '-o', str(w.out/'m.onnx')], 'not a run directory'),
    C('export-format', lambda w: ['export', str(w.run), '--format', 'tflite', '-o', str(w.out/'m.onnx')],
      "'tflite' is not one of"),
    C('export-output-exists', lambda w: ['export', str(w.run), '-o', str(w.file('m.onnx', 'x'))], 'already exists'),
    C('export-checkpoint-code', lambda w: ['export', str(w.checkpoint(pickle.dumps(Evil()))), '-o',
                                           str(w.out/'m.onnx')], 'refused to load'),
    C('evaluate-not-a-run', lambda w: ['evaluate', str(w.case)], 'not a run directory'),
    C('evaluate-tta', lambda w: ['evaluate', str(w.run), '--tta', 'rotate'], "'rotate' is not one of"),
    C('evaluate-split', lambda w: ['evaluate', str(w.run), '--split', 'train'], 'choose valid or test'),
    C('evaluate-output-exists', lambda w: ['evaluate', str(w.run), '-o', str(w.file('e.csv', 'x'))], 'already exists'),
    C('evaluate-data-gone', lambda w: ['evaluate', str(w.run_copy(True, lambda r: _edit(
        r, str(w.csv), str(w.case/'moved.csv'))))], 'label CSV not found'),
    C('predict-tta', lambda w: ['predict', str(w.run), str(w.images()), '--tta', 'five-crop'], "'five-crop' is not"),
    C('predict-video-unreadable', lambda w: ['predict', str(w.run), str(w.file('clip.mp4', b'not a video')), '--faces'],
      'clip.mp4 (not a readable video'),
    C('predict-video-damaged', lambda w: ['predict', str(w.run), str(w.video(damaged=True)), '--faces', '-o',
                                          str(w.out/'p.csv'), '--annotate', str(w.out/'a.mp4')],
      'clip.mp4: frame', 'does not decode'),
    C('predict-video-no-stream', lambda w: ['predict', str(w.run), str(w.file('a.mp4', b'')), '--faces'], 'a.mp4'),
    C('predict-video-without-faces', lambda w: ['predict', str(w.run), str(w.video())], 'clip.mp4: a video',
      'pass --faces'),
    C('predict-no-face', lambda w: ['predict', str(w.run), str(w.photo('coffee')), '--faces'],
      'no face found in', 'coffee.png', 'without --faces'),
    C('predict-every-without-faces', lambda w: ['predict', str(w.run), str(w.images()), '--every', '2'], 'add --faces'),
    C('predict-every-and-fps', lambda w: ['predict', str(w.run), str(w.video()), '--faces', '--every', '2',
                                          '--fps', '1'], 'choose one'),
    C('predict-every-zero', lambda w: ['predict', str(w.run), str(w.video()), '--faces', '--every', '0'], '--every'),
    C('predict-annotate-no-video', lambda w: ['predict', str(w.run), str(w.photo('astronaut')), '--faces',
                                              '--annotate', str(w.out/'a.mp4')], 'exactly one video', '0 given'),
    C('predict-annotate-format', lambda w: ['predict', str(w.run), str(w.video()), '--faces', '--annotate',
                                            str(w.out/'a.gif')], 'cannot write .gif video'),
    C('predict-annotate-exists', lambda w: ['predict', str(w.run), str(w.video()), '--faces', '--annotate',
                                            str(w.file('a.mp4', 'x'))], 'already exists'),
    C('predict-face-size', lambda w: ['predict', str(w.run), str(w.video()), '--faces', '--face-size', '4'],
      '--face-size'),
    C('report-not-a-folder', lambda w: ['report', str(w.case/'x')], 'no such run or sweep folder'),
    C('report-not-a-run', lambda w: ['report', str(w.images())], 'neither a run folder'),
    C('report-output-exists', lambda w: ['report', str(w.run), '-o', str(w.file('r.html', 'x'))], 'already exists'),
    C('report-checkpoint-choice', lambda w: ['report', str(w.run), '--checkpoint', 'first', '-o', str(w.out/'r.html')],
      "checkpoint 'first'"),
    C('label-issues-by', lambda w: ['label-issues', str(w.run), '--by', 'vibes'], '--by vibes'),
    C('label-issues-output-exists', lambda w: ['label-issues', str(w.run), '-o', str(w.file('l.csv', 'x'))],
      'already exists'),
    C('label-issues-data-gone', lambda w: ['label-issues', str(w.run_copy(True, lambda r: _edit(
        r, str(w.csv), str(w.case/'moved.csv')))), '-o', str(w.out/'l.csv')], 'label CSV not found'),
    C('table-metrics-broken', lambda w: ['table', str(w.run_copy(True, lambda r: (r/'metrics.json').write_text('{')))],
      'cannot read its metrics.json'),
    C('report-sweep-broken', lambda w: ['report', str(w.file('sw/sweep.csv', 'a,b\n"1\n').parent),
                                        '-o', str(w.out/'r.html')], 'sweep.csv: cannot parse as CSV'),
    C('report-sweep-foreign', lambda w: ['report', str(w.file('sw/sweep.csv', 'a,b\n1,2\n').parent),
                                         '-o', str(w.out/'r.html')], 'not written by eac-fastai sweep'),
    C('table-no-runs', lambda w: ['table', str(w.case)], 'no finished run'),
    C('table-metric-not-recorded', lambda w: ['table', str(w.run_copy(True, _strip_mean_class)), '--metric',
                                              'mean_class_accuracy'], 'trained before', '--metric accuracy'),
    C('table-metric-unknown', lambda w: ['table', str(w.run), '--metric', 'f1'], "'f1' is not one of"),
    C('table-missing', lambda w: ['table', str(w.case/'none')], 'none'),
]

def _history(content):
    return lambda run: (run/'history.csv').write_bytes(content)

RESUME_CASES = [
    C('resume-finished', lambda w: ['train', '--resume', str(w.run)], 'finished already'),
    C('resume-not-a-run', lambda w: ['train', '--resume', str(w.case)], 'not a run directory'),
    C('resume-missing', lambda w: ['train', '--resume', str(w.case/'none')], 'not a run directory'),
    C('resume-edited-lam', lambda w: ['train', '--resume', str(w.run_copy(change=lambda r: _edit(r, 'lam: 5.0',
                                                                                                  'lam: 1.0')))],
      'edited after the run started', 'eac.lam: 5.0 → 1.0'),
    C('resume-edited-bs', lambda w: ['train', '--resume',
                                     str(w.run_copy(change=lambda r: _edit(r, 'bs: 16', 'bs: 8')))],
      'data.bs: 16 → 8'),
    C('resume-edited-method', lambda w: ['train', '--resume', str(w.run_copy(
        change=lambda r: _edit(r, 'method: eac', 'method: baseline')))], "method: 'eac' → 'baseline'"),
    C('resume-recipe-invalid', lambda w: ['train', '--resume', str(w.run_copy(change=lambda r: _edit(
        r, 'bs: 16', 'bs: -1')))], 'data.bs'),
    C('resume-locked', lambda w: ['train', '--resume', str(w.unfinished)], f'in use by process {os.getpid()} on',
      hold=lambda w: w.unfinished),
    C('resume-no-checkpoint', lambda w: ['train', '--resume', str(w.run_copy(
        change=lambda r: (r/'models'/'resume.pth').unlink()))], 'before its first epoch ended'),
    C('resume-checkpoint-garbage', lambda w: ['train', '--resume', str(w.checkpoint(b'junk', 'resume.pth', False))],
      'not a PyTorch checkpoint'),
    C('resume-checkpoint-code', lambda w: ['train', '--resume', str(w.checkpoint(pickle.dumps(Evil()), 'resume.pth',
                                                                               False))], 'refused to load'),
    C('resume-checkpoint-not-ours', lambda w: ['train', '--resume', str(w.checkpoint({'a': torch.zeros(1)},
                                                                                     'resume.pth', False))],
      'not a resume checkpoint'),
    C('resume-history-unparsable', lambda w: ['train', '--resume', str(w.run_copy(change=_history(
        b'epoch,train_loss\n"1,2\n')))], 'history.csv', 'cannot read'),
    C('resume-history-foreign', lambda w: ['train', '--resume', str(w.run_copy(change=_history(b'step,loss\n0,1\n')))],
      'history.csv', 'not the history of this run'),
    C('resume-history-binary', lambda w: ['train', '--resume', str(w.run_copy(change=_history(b'\xff\xfe\x00\x01')))],
      'history.csv'),
    C('resume-diverged', lambda w: ['train', '--resume', str(w.run_copy(change=lambda r: (r/'diverged.json').write_text(
        '{}')))], 'diverged', 'start a new run'),
]

def _write_all(content): return lambda path: path.write_text(content)

OTHER_CASES = [
    C('make-noise-rate', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--rate', '1.5'], 'rate'),
    C('make-noise-rate-negative', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--rate', '-0.1'],
      'rate'),
    C('make-noise-kind', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--kind', 'bursty'],
      "'bursty' is not one of"),
    C('make-noise-matrix-missing', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--kind', 'matrix'],
      '--kind matrix needs --matrix'),
    C('make-noise-matrix-bad', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--kind', 'matrix',
                                          '--classes', 'Anger,Disgust,Fear,Happiness,Neutral,Sadness,Surprise',
                                          '--matrix', str(w.file('m.csv', 'a,b\n1,2\n'))],
      'm.csv'),
    C('make-noise-pairflip-order', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--kind',
                                              'pairflip'], 'depends on the class order'),
    C('make-noise-splits', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--splits', 'trian'],
      'no rows with split trian'),
    C('make-noise-classes-and-recipe', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--classes',
                                                  'a,b', '--recipe', str(w.recipe)], 'not both'),
    C('make-noise-classes-short', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--classes',
                                             'Happy,Sad'], 'not among the classes'),
    C('make-noise-csv-bad', lambda w: ['make-noise', str(w.labels(_drop('split'))), '-o', str(w.out/'n.csv')],
      'missing column(s) split'),
    C('make-noise-output-exists', lambda w: ['make-noise', str(w.csv), '-o', str(w.file('n.csv', 'x'))],
      'already exists'),
    C('make-noise-output-under-file', lambda w: ['make-noise', str(w.csv), '-o', str(w.file('f', 'x')/'n.csv')],
      'is a file, not a folder'),
    C('make-noise-rate-nan', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv'), '--rate', 'nan'],
      'rate'),
    C('convert-valid-pct', lambda w: ['convert', 'imagefolder', str(w.images()), '-o', str(w.out/'i.csv'),
                                      '--valid-pct', '2'], 'valid'),
    C('make-demo-exists', lambda w: ['make-demo', str(w.case)], 'already exists'),
    C('make-demo-params', lambda w: ['make-demo', str(w.out), '--noise', '1.5', '--size', '0'], '--noise', '--size'),
    C('make-demo-under-file', lambda w: ['make-demo', str(w.file('f', 'x')/'d')], 'is a file, not a folder'),
    C('sweep-bad-values', lambda w: ['sweep', str(w.recipe), 'eac.lam=[1,', '--out', str(w.out)],
      'cannot read the values'),
    C('sweep-no-values', lambda w: ['sweep', str(w.recipe), 'eac.lam=', '--out', str(w.out)], 'no value after ='),
    C('sweep-bad-key', lambda w: ['sweep', str(w.recipe), 'eac.lamb=1,2', '--out', str(w.out)],
      'eac.lamb: unknown key'),
    C('sweep-bad-value', lambda w: ['sweep', str(w.recipe), 'eac.lam=1,-2', '--out', str(w.out)], 'eac.lam'),
    C('sweep-out-under-file', lambda w: ['sweep', str(w.recipe), 'eac.lam=1,2', '--out', str(w.file('f', 'x')/'s')],
      'is a file, not a folder'),
    C('convert-rafdb-missing', lambda w: ['convert', 'rafdb', str(w.case/'raf'), '-o', str(w.out/'r.csv')], 'raf'),
    C('convert-imagefolder-missing', lambda w: ['convert', 'imagefolder', str(w.case/'nothing'), '-o',
                                                str(w.out/'i.csv')], 'nothing'),
    C('convert-imagefolder-empty', lambda w: ['convert', 'imagefolder', str(w.images(0, 0)), '-o', str(w.out/'i.csv')],
      'imgs'),
    C('convert-ferplus-missing', lambda w: ['convert', 'ferplus', str(w.case/'a.csv'), str(w.case/'b.csv'), '-o',
                                            str(w.out/'f.csv')], 'a.csv'),
    C('convert-cifar-missing', lambda w: ['convert', 'cifar100', str(w.case/'c'), '-o', str(w.out/'c.csv')], 'c'),
    C('convert-fmnist-missing', lambda w: ['convert', 'fashion-mnist', str(w.case/'f'), '-o', str(w.out/'f.csv')],
      'f'),
    C('convert-output-exists', lambda w: ['convert', 'imagefolder', str(w.images()), '-o', str(w.file('i.csv', 'x'))],
      'already exists'),
    C('convert-faces-none', lambda w: ['convert', 'imagefolder', str(w.photo('coffee', 'tree/cups').parents[1]),
                                       '-o', str(w.out/'i.csv'), '--faces'], 'no face found in any of its 1 images'),
    C('convert-all-faces-alone', lambda w: ['convert', 'imagefolder', str(w.images()), '-o', str(w.out/'i.csv'),
                                            '--all-faces'], '--all-faces works with --faces'),
    C('convert-faces-images-outside', lambda w: ['convert', 'imagefolder',
                                                 str(w.photo('camera', 'tree/men').parents[1]),
                                                 '-o', str(w.case/'i.csv'), '--faces', '--images', '../out/i'],
      "without '..'"),
    C('convert-faces-inside-the-photos', lambda w: ['convert', 'imagefolder',
                                                    str(w.photo('camera', 'tree/men').parents[1]),
                                                    '-o', str(w.case/'tree'/'i.csv'), '--faces'],
      'inside the photo folder'),
    C('convert-faces-no-face-list-exists', lambda w: _faces_beside(w, 'i_no_face.csv'), 'i_no_face.csv',
      'already exists'),
]

def _faces_beside(w:W, existing:str) -> list[str]:
    "Convert a tree of one face photo with --faces into the case's folder, where the file `existing` is already."
    w.file(existing, 'x')
    return ['convert', 'imagefolder', str(w.photo('camera', 'tree/men').parents[1]), '-o', str(w.case/'i.csv'),
            '--faces', '--images', 'crops']

def _ro(id, args, *words): return C(f'read-only-{id}', args, *words, ro=True)

def _settings(id, text, *words, args=None):
    "A case reading a settings.ini of `text` (`{case}`: the case's folder) and training the demo data."
    return C(f'settings-{id}', args or (lambda w: ['train', str(w.recipe), '~data.csv', 'data.demo={}']), *words,
             settings=text)

SETTINGS_CASES = [
    _settings('garbage', 'garbage [[\n', 'not a valid ini file'),
    _settings('no-section', '[paths]\ndata = d\n', 'no [eac_fastai] section'),
    _settings('unknown-key', '[eac_fastai]\ndatas = d\n', 'unknown key(s) datas'),
    _settings('data-is-a-file', '[eac_fastai]\ndata = {case}/settings.ini\nruns = {case}/out\n',
              'the data folder of', 'is a file, not a folder'),
    _settings('runs-is-a-file', '[eac_fastai]\ndata = {case}/out\nruns = {case}/settings.ini\n',
              'runs folder', 'is a file, not a folder'),
    _settings('weights-missing', '[eac_fastai]\nweights = {case}/w\nruns = {case}/out\n', 'w/r18.pth',
              'weights file not found', args=lambda w: ['train', str(w.recipe), 'model.weights=r18.pth']),
    _settings('not-utf8', b'[eac_fastai]\ndata = \xff\xfe\n', 'cannot read the settings file'),
]

ENVIRONMENT_CASES = [
    _ro('train-out', lambda w: ['train', str(w.recipe), '--out', str(w.ro/'runs')], 'is not writable'),
    _ro('lr-find-out', lambda w: ['lr-find', str(w.recipe), '--out', str(w.ro/'runs')], 'is not writable'),
    _ro('sweep-out', lambda w: ['sweep', str(w.recipe), 'eac.lam=1,2', '--out', str(w.ro)], 'is not writable'),
    _ro('make-noise', lambda w: ['make-noise', str(w.csv), '-o', str(w.ro/'n.csv')], 'is not writable'),
    _ro('predict', lambda w: ['predict', str(w.run), str(w.images()), '-o', str(w.ro/'p.csv')], 'is not writable'),
    _ro('report', lambda w: ['report', str(w.run), '-o', str(w.ro/'r.html')], 'is not writable'),
    _ro('report-in-run', lambda w: ['report', str(w.ro/'run')], 'ro/run is not writable'),
    _ro('label-issues-in-run', lambda w: ['label-issues', str(w.ro/'run')], 'ro/run is not writable'),
    _ro('make-demo', lambda w: ['make-demo', str(w.ro/'demo')], 'is not writable'),
    _ro('convert', lambda w: ['convert', 'imagefolder', str(w.images()), '-o', str(w.ro/'i.csv')], 'is not writable'),
    _ro('export', lambda w: ['export', str(w.run), '-o', str(w.ro/'m.onnx')], 'is not writable'),
    _ro('export-in-run', lambda w: ['export', str(w.ro/'run')], 'ro/run is not writable'),
    _ro('evaluate', lambda w: ['evaluate', str(w.run), '-o', str(w.ro/'e.csv')], 'is not writable'),
    _ro('table-csv', lambda w: ['table', str(w.run), '--csv', str(w.ro/'t.csv')], 'is not writable'),
    _ro('resume', lambda w: ['train', '--resume', str(w.ro/'unfinished')], 'cannot lock the run folder'),
    C('disk-full-make-noise', lambda w: ['make-noise', str(w.csv), '-o', str(w.out/'n.csv')], 'n.csv: cannot write it',
      fsize=1000),
    C('disk-full-report', lambda w: ['report', str(w.run), '-o', str(w.out/'r.html')], 'r.html: cannot write it',
      fsize=20_000),
    C('disk-full-label-issues', lambda w: ['label-issues', str(w.run), '-o', str(w.out/'l.csv')],
      'l.csv: cannot write it', fsize=1000),
    C('disk-full-export', lambda w: ['export', str(w.run), '-o', str(w.out/'m.onnx')], 'm.onnx: cannot write it',
      fsize=50_000),
    C('disk-full-table', lambda w: ['table', str(w.run), '--csv', str(w.out/'t.csv')], 't.csv: cannot write it',
      fsize=10),
    C('disk-full-convert', lambda w: ['convert', 'imagefolder', str(w.images(0, 0)), '-o', str(w.out/'i.csv')],
      'no image', fsize=10),
    C('disk-full-make-demo', lambda w: ['make-demo', str(w.out/'d')], 'File too large', fsize=1000),
]

CASES = (RECIPES + CSV_CASES + IMAGE_CASES + DATA_CASES + RUN_CASES + RESUME_CASES + OTHER_CASES + SETTINGS_CASES
         + ENVIRONMENT_CASES)

def _snapshot(root:Path, skip:Path) -> dict:
    "Every file under `root` but `skip`'s: size and modification time."
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob('*')
            if p.is_file() and skip not in p.parents}

def test_the_catalogue_has_150_cases_with_unique_names():
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)

@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input(case, world, tmp_path):
    w = W(**world, case=tmp_path, out=tmp_path/'out')
    if case.ro and w.ro is None: pytest.skip("no read-only folder can be made here (root without mount)")
    args, env = case.args(w), None
    if case.settings is not None:
        text = case.settings.replace('{case}', str(w.case)) if isinstance(case.settings, str) else case.settings
        env = {'EAC_FASTAI_SETTINGS': str(w.file('settings.ini', text))}
    if case.env: env = {**(env or {}), **{k: v.replace('{case}', str(w.case)) for k, v in case.env.items()}}
    before = _snapshot(w.base, skip=w.base/'runs') | _snapshot(tmp_path, skip=w.out)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        if case.fsize: resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, limit[1]))
        if case.hold is None: r = CliRunner().invoke(app, args, env=env)
        else:
            with RunLock(case.hold(w)): r = CliRunner().invoke(app, args)
            before = {p: v for p, v in before.items() if p.name != RunLock.FILE}    # the holder's own claim
    finally: resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    text = ' '.join(r.output.split())
    assert r.exit_code == case.code, f"exit {r.exit_code}: {r.output[-3000:]}\n{r.exception!r}"
    assert 'Traceback' not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.exception
    for word in case.words: assert ' '.join(word.split()) in text, f"{word!r} not in: {r.output[-3000:]}"
    assert not w.out.exists() or not any(w.out.iterdir()), list(w.out.rglob('*'))
    assert not (w.base/'runs').exists() or not any((w.base/'runs').iterdir())
    after = _snapshot(w.base, skip=w.base/'runs') | _snapshot(tmp_path, skip=w.out)
    if case.hold: after = {p: v for p, v in after.items() if p.name != RunLock.FILE}
    assert after == before, set(after.items()) ^ set(before.items())
    assert not Path('/tmp/eac-fastai-pwned').exists()

# behind the catalogue

def _tiny(tmp_path, world, **data) -> Path:
    f = tmp_path/'r.yaml'
    f.write_text(f"base: {world['recipe']}\n" + (f"data: {json.dumps(data)}\n" if data else ''))
    return f

def test_a_diverging_run_stops_at_once_exits_3_and_keeps_its_last_good_epoch(world, tmp_path, monkeypatch):
    # from the CLI: NaN in the first batch, nothing trained to keep
    r = CliRunner().invoke(app, ['train', str(_tiny(tmp_path, world, std=[1e-40]*3)), '--out', str(tmp_path/'a')])
    text = ' '.join(r.output.split())
    assert r.exit_code == 3 and 'diverged: the training loss became nan in epoch 0 of 1 (batch 1 of 4)' in text, text
    assert 'no epoch had finished' in text and 'Check train.lr' in text and 'Traceback' not in r.output
    (run,) = (tmp_path/'a').iterdir()
    assert json.loads((run/'diverged.json').read_text())['epoch'] == 0 and not (run/'metrics.json').exists()
    assert not list((run/'models').glob('*.pth')) if (run/'models').exists() else True
    # in the API, the weights turn NaN in epoch 1: epoch 0's checkpoints and history row stay as they were
    import eac_fastai.training.fit as fit
    from fastai.callback.core import Callback
    class Poison(Callback):
        def before_batch(self):
            if self.training and self.epoch == 1 and self.iter == 2:
                with torch.no_grad(): next(self.model.parameters()).fill_(float('nan'))
    real = fit.fit_with_schedule
    monkeypatch.setattr(fit, 'fit_with_schedule', lambda learn, *a, cbs=(), **k: real(learn, *a, cbs=[*cbs, Poison()],
                                                                                      **k))
    recipe = load_recipe(world['recipe'], ['train.epochs=3'])
    with pytest.raises(TrainingDiverged, match=r"in epoch 1 of 3 \(batch 3 of 4\).*keeps epoch 0's checkpoints"):
        train_recipe(recipe, tmp_path/'b')
    (run,) = (tmp_path/'b').iterdir()
    assert pd.read_csv(run/'history.csv').epoch.tolist() == [0]
    state = load_torch_file(run/'models'/'resume.pth')
    assert state['epoch'] == 0
    assert all(torch.isfinite(v).all() for v in state['model'].values() if v.is_floating_point())
    r = CliRunner().invoke(app, ['train', '--resume', str(run)])
    assert r.exit_code == 2 and 'resuming would repeat it' in r.output

def test_a_sweep_trains_past_a_diverging_run_and_exits_3(world, tmp_path):
    r = CliRunner().invoke(app, ['sweep', str(world['recipe']), 'data.std=[1.0e-40,1.0e-40,1.0e-40],[0.2,0.2,0.2]',
                                 '--out', str(tmp_path/'a')])
    assert r.exit_code == 3 and '1 of 2 runs diverged' in ' '.join(r.output.split()), r.output
    (csv,) = (tmp_path/'a').glob('*/sweep.csv')
    df = pd.read_csv(csv)
    assert df.diverged.tolist() == [True, False] and df.last5_mean_accuracy.notna().tolist() == [False, True]
    # every run diverged: the same columns, and the sweep's report still renders
    r = CliRunner().invoke(app, ['sweep', str(world['recipe']), 'data.std=[1.0e-40,1.0e-40,1.0e-40]',
                                 'eac.lam=1,2', '--out', str(tmp_path/'b')])
    assert r.exit_code == 3 and '2 of 2 runs diverged' in ' '.join(r.output.split()), r.output
    (csv,) = (tmp_path/'b').glob('*/sweep.csv')
    assert list(pd.read_csv(csv).columns) == [c if c != 'data.std' else 'eac.lam' for c in df.columns]
    r = CliRunner().invoke(app, ['report', str(csv.parent)])
    assert r.exit_code in (0, 2) and 'Traceback' not in r.output, r.output

def test_a_full_disk_while_training_fails_clearly_and_leaves_no_half_file(world, tmp_path):
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, limit[1]))       # the recipe fits, a checkpoint does not
    try: r = CliRunner().invoke(app, ['train', str(world['recipe']), '--out', str(tmp_path)])
    finally: resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert r.exit_code == 2 and 'cannot write it (File too large)' in ' '.join(r.output.split()), r.output
    (run,) = tmp_path.iterdir()
    assert load_recipe(run/'recipe.yaml') == load_recipe(world['recipe'])
    assert not [f for f in run.rglob('.*') if f.name != RunLock.FILE]            # no temporary file left behind

def test_check_data_warns_of_imbalance_and_of_images_in_two_splits(tmp_path, settings_file):
    csv = make_demo_dataset(tmp_path/'ds', DemoSpec(n_train=10, n_valid=2, n_test=1, size=32, noise=0))
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    fear = df.index[(df.split == 'train') & (df.label == 'Fear')]
    df = df.drop(fear[1:])                                       # 10 images of every class, 1 of Fear
    shutil.copy(csv.parent/df.image[0], csv.parent/'copy.png')  # a training image again, as a test image
    df = pd.concat([df, pd.DataFrame([dict(image='copy.png', label=df.label[0], split='test',
                                           clean_label=df.label[0])])], ignore_index=True)
    df.to_csv(csv, index=False)
    recipe = tmp_path/'r.yaml'; recipe.write_text(f"data: {{csv: {csv}}}\n")
    r = CliRunner().invoke(app, ['check-data', str(recipe)])
    text = ' '.join(r.output.split())
    assert r.exit_code == 0 and 'no problems found' in text, text
    assert 'imbalanced: Anger has 10 images, Fear 1 (10:1)' in text and 'data.sampler: balanced' in text
    assert f"line 2 (train: {df.image[0]}) = line {len(df)+1} (test: copy.png)" in text
    r = CliRunner().invoke(app, ['check-data', str(recipe), 'data.sampler=balanced'])
    assert 'imbalanced' not in r.output and 'same pixels' in r.output

def test_a_last_batch_of_one_is_refused_only_where_batchnorm_would_see_one_value(dls):
    from eac_fastai.models.learner import eac_learner
    from eac_fastai.methods import method_callback
    from eac_fastai.training.build import last_batch_problem
    learn = eac_learner(dls, 'resnet10_narrow', method_callback('baseline'))
    dls.train.n, dls.train.bs = 17, 16                               # a last batch of one
    assert last_batch_problem(learn, 32) is None                     # a 4×4 map: 16 values per channel
    assert 'BatchNorm layer' in last_batch_problem(learn, 8)         # 1×1
    dls.train.drop_last = True
    assert last_batch_problem(learn, 8) is None
