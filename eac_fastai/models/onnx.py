"""A trained network as an ONNX file a deployment stack runs without Python model code or pickles, and running one.

The exported graph takes RGB images as float32 in [0, 1], NCHW, squish-resized (bilinear) to the run's image size,
with a dynamic batch axis; it normalises them itself (the run's `data.mean`/`data.std`) and returns class
probabilities (softmax). Its metadata holds the class names in output order (`classes`, JSON), `img_size`, the
statistics folded in, and where it came from. Needs the `onnx` extra (`pip install -e ".[onnx]"`)."""
import json
from pathlib import Path
import numpy as np, torch
from torch import nn
from ..errors import UserError
from ..files import atomic_path

__all__ = ['ONNX_EXTRA', 'Deployed', 'export_onnx', 'OnnxClassifier']

ONNX_EXTRA = 'pip install -e ".[onnx]" (onnx, onnxruntime, onnxscript)'

def _require(module:str):
    "Import `module` of the onnx extra, or a `UserError` naming the extra."
    import importlib
    try: return importlib.import_module(module)
    except ImportError: raise UserError(f"ONNX needs {module}, which is not installed: {ONNX_EXTRA}") from None

class Deployed(nn.Module):
    "`model` (logits) behind Normalize and before softmax: [0, 1] RGB images in, class probabilities out."
    def __init__(self, model:nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
    def forward(self, x): return torch.softmax(self.model((x - self.mean)/self.std).float(), dim=1)

def export_onnx(model:nn.Module, path, classes, img_size:int, mean, std, **meta) -> Path:
    """Write `model` (in eval mode, on the CPU) with Normalize and softmax folded in to the ONNX file `path`
    (atomically), batch axis dynamic, `classes`, `img_size`, the statistics and `meta` in its metadata."""
    onnx, _ = _require('onnx'), _require('onnxscript')
    deployed = Deployed(model, mean, std).cpu().eval()
    x = torch.rand(2, 3, img_size, img_size)
    with torch.no_grad():
        program = torch.onnx.export(deployed, (x,), input_names=['image'], output_names=['probabilities'],
                                    dynamic_shapes=({0: torch.export.Dim('batch')},), dynamo=True, verbose=False)
    proto = program.model_proto
    info = dict(classes=json.dumps(list(classes)), img_size=str(img_size), mean=json.dumps(list(mean)),
                std=json.dumps(list(std)),
                input="RGB float32 in [0, 1], NCHW, squish-resized (bilinear) to img_size × img_size",
                output="class probabilities (softmax), in the order of classes", **{k: str(v) for k, v in meta.items()})
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **info})
    with atomic_path(path) as tmp: onnx.save(proto, str(tmp))
    return Path(path)

class OnnxClassifier:
    "An ONNX file written by `export_onnx`, run with ONNX Runtime: its classes, image size and probabilities."
    def __init__(self, path):
        ort, path = _require('onnxruntime'), Path(path)
        if not path.is_file(): raise UserError(f"{path}: no such ONNX file")
        try: self.session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        except Exception as e:
            raise UserError(f"{path}: not an ONNX model ONNX Runtime can load "
                            f"({str(e).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try: self.classes, self.img_size = json.loads(meta['classes']), int(meta['img_size'])
        except (KeyError, ValueError):
            raise UserError(f"{path}: no class names and image size in its metadata; export it with "
                            "eac-fastai export RUN --format onnx") from None
        self.path, self.input = path, self.session.get_inputs()[0].name

    def __call__(self, x) -> np.ndarray:
        "Class probabilities of a batch of [0, 1] RGB images (N×3×S×S, a tensor or an array)."
        x = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
        return self.session.run(None, {self.input: x.astype(np.float32)})[0]
