"Paths from `settings.ini`, read the way fastai reads `~/.fastai/config.ini`."
import configparser, os
from dataclasses import dataclass
from pathlib import Path
from .errors import UserError

__all__ = ['Settings', 'find_settings', 'load_settings']

SECTION = 'eac_fastai'
DEFAULTS = dict(data='data', weights='weights', runs='runs')

@dataclass(frozen=True)
class Settings:
    "Where datasets, pretrained weights and runs live; `source` is the ini file read, if any."
    data: Path
    weights: Path
    runs: Path
    source: Path|None = None

    def data_path(self, p) -> Path: return _under(self.data, p)
    def weights_path(self, p) -> Path: return _under(self.weights, p)

def _under(base:Path, p) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else base/p

def find_settings(start:Path|None=None) -> Path|None:
    "`$EAC_FASTAI_SETTINGS`, else the first `settings.ini` with an `[eac_fastai]` section in `start` or its parents."
    if env := os.environ.get('EAC_FASTAI_SETTINGS'):
        p = Path(env).expanduser()
        if not p.is_file(): raise UserError(f"EAC_FASTAI_SETTINGS={env}: no such file; "
                                            "point it at a settings.ini or unset it")
        return p
    start = Path(start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        f = d/'settings.ini'
        if f.is_file() and SECTION in _read(f): return f
    return None

def _read(f:Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    try: cp.read(f, encoding='utf-8')
    except configparser.Error as e:
        raise UserError(f"{f}: not a valid ini file ({e.message.splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError) as e: raise UserError(f"{f}: cannot read the settings file ({e})") from None
    return cp

def load_settings(start:Path|None=None) -> Settings:
    "Settings from `find_settings`, or `~/.eac_fastai/{data,weights,runs}` when there is no settings file."
    f = find_settings(start)
    if f is None:
        home = Path('~/.eac_fastai').expanduser()
        return Settings(**{k: home/v for k,v in DEFAULTS.items()})
    cp = _read(f)
    if SECTION not in cp: raise UserError(f"{f}: no [{SECTION}] section; add one with keys {', '.join(DEFAULTS)}")
    sec = cp[SECTION]
    unknown = set(sec) - set(DEFAULTS) - set(cp.defaults())
    if unknown: raise UserError(f"{f}: unknown key(s) {', '.join(sorted(unknown))} in [{SECTION}]; "
                                f"known: {', '.join(DEFAULTS)}")
    base = f.parent.resolve()
    return Settings(**{k: _under(base, sec.get(k, v)) for k,v in DEFAULTS.items()}, source=f)
