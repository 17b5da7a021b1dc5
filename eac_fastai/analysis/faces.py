"""Expressions of the faces in photos and videos: every face detected and aligned (`data.faces`), its crop classified,
one row per face per image or sampled video frame; images and frames without a face get a row saying so.

`predict_faces` takes a `classify(files) → frame` (`analysis.predict.classifier`), so a run folder, an export and
an ONNX file classify the same aligned crops, which are written as PNG files and read back as in training."""
import tempfile
from pathlib import Path
from typing import Callable
import numpy as np, pandas as pd
from PIL import Image, ImageDraw, ImageFont
from ..data.core import load_rgb
from ..data.faces import FaceDetector, align
from ..data.video import is_video, video_frames, video_rate, write_video
from ..errors import UserError

__all__ = ['predict_faces', 'no_face_summary', 'annotate_video']

BOX = ['x1', 'y1', 'x2', 'y2']

def _frames(path:Path, every:int|None, fps:float|None):
    "`(frame, time, image)` of a video's sampled frames, or `(None, None, image)` once for a photo."
    if is_video(path): yield from video_frames(path, every, fps)
    else: yield None, None, load_rgb(path)

def predict_faces(classify:Callable, files, detector:FaceDetector|None=None, size:int=112, margin:float=0.1,
                  every:int|None=None, fps:float|None=None) -> pd.DataFrame:
    """One row per face found by `detector` in each image and sampled video frame of `files` (`every`-th frame or
    `fps` frames per second; every frame by default): `image`, `frame` and `time` (videos only), `face` (0, 1, …
    largest first; empty where none was found), its box `x1 y1 x2 y2` and `face_score`, then `classify`'s `pred` and
    `prob_<class>` columns for the `size`×`size` aligned crop. Without `detector`, whole frames are classified."""
    rows, crops = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for f in map(Path, files):
            for frame, time, img in _frames(f, every, fps):
                where = dict(image=str(f), frame=frame, time=time)
                faces = detector(img) if detector else [None]
                if not faces: rows.append(dict(where, face=None))
                for k, face in enumerate(faces):
                    crops.append(Path(tmp)/f'{len(crops)}.png')
                    (align(img, face, size, margin) if face else img).save(crops[-1])
                    box = (dict(zip(BOX, face.box.astype(float).round(1).tolist()), face_score=round(face.score, 4))
                           if face else {})
                    rows.append(dict(where, face=k, **box, crop=len(crops) - 1))
        preds = classify(crops).drop(columns='image') if crops else pd.DataFrame(columns=['pred'])
    out = pd.DataFrame(rows).reindex(columns=['image', 'frame', 'time', 'face', *BOX, 'face_score', 'crop'])
    out = out.join(preds, on='crop').drop(columns='crop')
    if not any(map(is_video, files)): out = out.drop(columns=['frame', 'time'])
    return out.astype({c: 'Int64' for c in ('frame', 'face') if c in out})

def no_face_summary(out:pd.DataFrame) -> tuple[int, int, list[str]]:
    "How many images and sampled frames have no face, of how many, and the first few (`image`, `image (frame N)`)."
    frame = out.frame if 'frame' in out else pd.Series(pd.NA, index=out.index, dtype='Int64')
    key = out.image + (' (frame ' + frame.astype(str) + ')').where(frame.notna(), '')
    empty = key[out.face.isna()].drop_duplicates()
    return len(empty), key.nunique(), empty.head(5).tolist()

def _font(size:int):
    try: return ImageFont.load_default(size=size)
    except TypeError: return ImageFont.load_default()         # a Pillow without FreeType: its fixed bitmap font

def _draw(img:Image.Image, rows:pd.DataFrame) -> Image.Image:
    "`img` with each row's box and `pred probability` drawn."
    img, probs = img.copy(), rows.filter(like='prob_').to_numpy(dtype=float)
    draw, font = ImageDraw.Draw(img), _font(max(12, img.height//30))
    for (_, r), p in zip(rows.iterrows(), probs):
        if pd.isna(r.face): continue
        box = [float(r[c]) for c in BOX]
        draw.rectangle(box, outline=(255, 200, 0), width=max(2, img.height//200))
        text = f"{r.pred} {np.nanmax(p):.2f}" if len(p) else str(r.pred)
        l, t, rr, b = draw.textbbox((box[0], box[1]), text, font=font, anchor='lb')
        draw.rectangle((l - 2, t - 2, rr + 2, b + 2), fill=(0, 0, 0))
        draw.text((box[0], box[1]), text, fill=(255, 255, 255), font=font, anchor='lb')
    return img

def annotate_video(video, out, preds:pd.DataFrame) -> Path:
    """A copy of `video` at its frame rate with the boxes and predicted classes of `preds` (its rows of this video)
    drawn, each sampled frame's until the next sampled frame; written to the new file `out`."""
    rows = preds[preds.image == str(video)]
    if rows.empty: raise UserError(f"{video}: no prediction rows for this video to draw")
    by_frame = {int(k): g for k, g in rows.groupby('frame')}
    def frames():
        shown = rows.iloc[:0]
        for i, _, img in video_frames(video):
            shown = by_frame.get(i, shown)
            yield _draw(img, shown)
    return write_video(out, frames(), video_rate(video))
