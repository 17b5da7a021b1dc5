"""Built-in demo data: procedurally drawn faces with 7 expressions (RAF-DB's classes) and noisy labels.

Each face varies in identity (shape, skin, hair, eye spacing), position, scale, brightness and
contrast; the expression is carried by the brows, eyes and mouth. Faces are drawn near-symmetric,
like aligned face crops, so the horizontal flip that EAC relies on keeps the expression."""
import hashlib, json, math, shutil, tempfile
from dataclasses import dataclass, asdict
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image, ImageDraw
from .convert import RAFDB_CLASSES
from .noise import add_label_noise, symmetric_noise_matrix

__all__ = ['DemoSpec', 'draw_face', 'make_demo_dataset', 'demo_dataset']

GENERATOR_VERSION = 2                  # bump when drawing or labelling changes: cached demo data is remade

# per class: brow lift (in eye heights), brow slant (+: inner ends up), eye openness, mouth kind, mouth curve
_EXPRESSIONS = {
    'Surprise':  dict(lift=1.0,  slant=0.0,  eye=1.0,  mouth='o',     curve=0.0),
    'Fear':      dict(lift=0.8,  slant=0.5,  eye=0.95, mouth='wide',  curve=-0.1),
    'Disgust':   dict(lift=-0.4, slant=-0.2, eye=0.35, mouth='sneer', curve=-0.35),
    'Happiness': dict(lift=0.1,  slant=0.0,  eye=0.45, mouth='smile', curve=0.8),
    'Sadness':   dict(lift=0.25, slant=0.7,  eye=0.5,  mouth='line',  curve=-0.7),
    'Anger':     dict(lift=-0.5, slant=-0.8, eye=0.4,  mouth='tight', curve=-0.15),
    'Neutral':   dict(lift=0.0,  slant=0.0,  eye=0.6,  mouth='line',  curve=0.0),
}

def draw_face(expression:str, rng:np.random.Generator, size:int=64) -> Image.Image:
    "One RGB face of `expression` (a name in `RAFDB_CLASSES`), drawn at 4× and downsampled to `size`."
    e, S = _EXPRESSIONS[expression], size*4
    jit = lambda s: rng.normal(0, s)
    bg = rng.uniform(20, 235, 3)
    skin = np.clip(np.array([95, 62, 45]) + rng.uniform(0, 1)*np.array([160, 165, 160]) + rng.normal(0, 8, 3), 0, 255)
    if np.abs(skin-bg).mean() < 40: bg = 255 - skin*0.8
    img = Image.new('RGB', (S, S), tuple(int(v) for v in bg))
    d = ImageDraw.Draw(img)
    scale = rng.uniform(1.05, 1.25)                     # a close crop, as aligned face datasets are
    cx, cy = S*(0.5 + rng.uniform(-0.06, 0.06)), S*(0.53 + rng.uniform(-0.05, 0.05))
    a, b = S*0.29*scale*rng.uniform(0.88, 1.1), S*0.37*scale*rng.uniform(0.9, 1.1)
    hair = tuple(int(v) for v in rng.uniform(0, 120, 3))
    hair_h = b*rng.uniform(0.25, 0.6)
    d.ellipse([cx-a*1.05, cy-b*1.05, cx+a*1.05, cy-b+hair_h*2], fill=hair)
    d.ellipse([cx-a, cy-b, cx+a, cy+b], fill=tuple(int(v) for v in skin))
    dark = tuple(int(v) for v in skin*0.25)
    lw = max(2, int(S*0.018))
    # eyes
    ex, ey = a*rng.uniform(0.36, 0.48), cy - b*rng.uniform(0.12, 0.22)
    rx = a*rng.uniform(0.14, 0.19)
    ry = rx*max(0.15, e['eye'] + jit(0.07))
    for side in (-1, 1):
        x = cx + side*ex + jit(S*0.003)
        d.ellipse([x-rx, ey-ry, x+rx, ey+ry], fill=(245, 245, 245), outline=dark, width=max(1, lw//2))
        pr = min(rx, ry)*0.6
        d.ellipse([x-pr, ey-pr, x+pr, ey+pr], fill=dark)
    # brows: lift moves them up, slant raises the inner ends
    by = ey - rx*(1.3 + e['lift'] + jit(0.12))
    slant = rx*(e['slant'] + jit(0.1))
    bw = rx*rng.uniform(1.1, 1.4)
    for side in (-1, 1):
        inner, outer = cx + side*(ex-bw), cx + side*(ex+bw)
        d.line([(inner, by - slant), (outer, by + slant*0.6)], fill=dark, width=lw*2)
    # nose
    ny = cy + b*0.12
    d.line([(cx, ey + ry), (cx - a*0.07, ny), (cx + a*0.05, ny)], fill=tuple(int(v) for v in skin*0.7), width=lw)
    # mouth
    my, mw = cy + b*rng.uniform(0.45, 0.55), a*rng.uniform(0.42, 0.58)
    curve = b*0.12*(e['curve'] + jit(0.1))
    kind = e['mouth']
    if kind == 'o':
        h = b*rng.uniform(0.13, 0.2)
        d.ellipse([cx-mw*0.45, my-h, cx+mw*0.45, my+h], fill=(60, 10, 20), outline=dark, width=lw)
    elif kind == 'wide':
        h = b*rng.uniform(0.07, 0.11)
        d.rounded_rectangle([cx-mw*1.1, my-h, cx+mw*1.1, my+h], radius=h*0.8, fill=(60, 10, 20), outline=dark, width=lw)
        d.rectangle([cx-mw*0.9, my-h*0.9, cx+mw*0.9, my-h*0.3], fill=(240, 240, 235))
    elif kind == 'smile':
        pts = [(cx + mw*t, my - curve*(t*t) + curve*0.3) for t in np.linspace(-1, 1, 15)]
        d.polygon(pts + [(cx, my + curve*0.5)], fill=(110, 20, 30), outline=dark)
        d.line(pts, fill=dark, width=lw)
    elif kind == 'sneer':
        pts = [(cx + mw*0.8*t, my - curve*(t*t) + b*0.03*math.cos(3*math.pi*t)) for t in np.linspace(-1, 1, 17)]
        d.line(pts, fill=dark, width=lw*2)
        for side in (-1, 1): d.line([(cx+side*a*0.12, ny-b*0.08), (cx+side*a*0.2, ny-b*0.02)], fill=dark, width=lw)
    else:
        width = lw*(3 if kind == 'tight' else 2)
        w = mw*(0.75 if kind == 'tight' else 1.0)
        d.line([(cx + w*t, my - curve*(t*t)) for t in np.linspace(-1, 1, 15)], fill=dark, width=width)
    img = img.resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    arr = (arr - 128)*rng.uniform(0.6, 1.15) + 128 + rng.uniform(-25, 25) + rng.normal(0, rng.uniform(0, 6), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))

@dataclass(frozen=True)
class DemoSpec:
    "What to generate: images per class and split, image size, symmetric noise rate on the train split, seed."
    n_train: int = 100
    n_valid: int = 30
    n_test: int = 30
    size: int = 64
    noise: float = 0.3
    seed: int = 0

    @property
    def key(self) -> str:
        "Names the generated folder: changes with the settings and with the generator's version."
        return hashlib.sha1(json.dumps(dict(asdict(self), generator=GENERATOR_VERSION),
                                       sort_keys=True).encode()).hexdigest()[:10]

def make_demo_dataset(dest, spec:DemoSpec=DemoSpec()) -> Path:
    "Write `dest/images/<split>/*.png` and `dest/labels.csv` (image, label, split, clean_label); returns the CSV path."
    dest = Path(dest)
    rng = np.random.default_rng(spec.seed)
    tmp = Path(tempfile.mkdtemp(prefix='.demo-', dir=_mkdir(dest.parent)))
    try:
        rows = []
        for split, n in (('train', spec.n_train), ('valid', spec.n_valid), ('test', spec.n_test)):
            (tmp/'images'/split).mkdir(parents=True)
            ys = rng.permutation(np.repeat(np.arange(len(RAFDB_CLASSES)), n))
            for i, y in enumerate(ys):
                name = f'images/{split}/{split}_{i:05d}.png'
                draw_face(RAFDB_CLASSES[y], rng, spec.size).save(tmp/name)
                rows.append((name, RAFDB_CLASSES[y], split))
        df = pd.DataFrame(rows, columns=['image', 'label', 'split'])
        df = add_label_noise(df, RAFDB_CLASSES, symmetric_noise_matrix(len(RAFDB_CLASSES), spec.noise), seed=spec.seed)
        df.to_csv(tmp/'labels.csv', index=False)
        (tmp/'demo.json').write_text(json.dumps(asdict(spec), indent=2))
        # another process made it meanwhile: same seed, same files
        if (dest/'labels.csv').is_file(): return dest/'labels.csv'
        if dest.exists(): shutil.rmtree(dest)                 # an incomplete one
        tmp.chmod(0o755)                                # mkdtemp makes it private
        tmp.rename(dest)
    finally:
        if tmp.exists(): shutil.rmtree(tmp)
    return dest/'labels.csv'

def _mkdir(p:Path) -> Path: p.mkdir(parents=True, exist_ok=True); return p

def demo_dataset(data_dir, spec:DemoSpec=DemoSpec(), create:bool=True) -> Path:
    "The demo CSV under `data_dir/demo-<key>/`, generated on first use when `create`."
    dest = Path(data_dir)/f'demo-{spec.key}'
    csv = dest/'labels.csv'
    return make_demo_dataset(dest, spec) if create and not csv.is_file() else csv
