"""Video files read and written through PyAV (FFmpeg's decoders and encoders, BSD licence; `pip install -e ".[video]"`).

`video_frames` decodes a file's first video stream and yields the sampled frames with their index and time;
`write_video` encodes RGB frames to a new file (H.264 where FFmpeg has it, else MPEG-4 part 2)."""
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator
from PIL import Image
from ..errors import UserError
from ..files import atomic_path

__all__ = ['VIDEO_EXTRA', 'VIDEO_EXTS', 'VIDEO_FORMATS', 'is_video', 'video_problem', 'video_frames', 'video_rate',
           'video_format', 'write_video']

VIDEO_EXTRA = 'pip install -e ".[video]" (av: FFmpeg through PyAV)'
VIDEO_EXTS = ('.mp4', '.mov', '.m4v', '.mkv', '.avi', '.webm', '.mpg', '.mpeg', '.wmv', '.flv', '.gif')
VIDEO_FORMATS = {'.mp4': 'mp4', '.mov': 'mov', '.m4v': 'mp4', '.mkv': 'matroska', '.avi': 'avi'}   # writable

def _av():
    try: import av
    except ImportError: raise UserError(f"reading and writing video needs PyAV, which is not installed: "
                                        f"{VIDEO_EXTRA}") from None
    return av

def is_video(path) -> bool:
    "Whether `path` names a video file (by its extension, `VIDEO_EXTS`)."
    return Path(path).suffix.lower() in VIDEO_EXTS

def video_problem(path) -> str:
    "'' when `path` opens as a video whose first frame decodes, else why not (one line)."
    av = _av()
    try:
        with av.open(str(path)) as c:
            if not c.streams.video: return "no video stream in it"
            next(c.decode(video=0))
    except StopIteration: return "its video stream has no frames"
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        return f"not a readable video: {getattr(e, 'strerror', None) or e}"
    return ''

def video_frames(path, every:int|None=None, fps:float|None=None) -> Iterator[tuple[int, float, Image.Image]]:
    """`(frame index, time in seconds from the first frame, RGB image)` of the frames of `path`'s first video stream,
    upright as its rotation metadata says (phone videos): every frame, every `every`-th frame from the first, or the
    first frame at or after each multiple of 1/`fps` seconds. A frame that does not decode: a `UserError` naming it."""
    av = _av()
    if every is not None and every < 1 or fps is not None and fps <= 0:
        raise ValueError(f"every={every}, fps={fps}: give a positive number of frames or frames per second")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = 'AUTO'
        rate, start = float(stream.average_rate or stream.guessed_rate or 25), None
        due, i, frames = 0., -1, c.decode(stream)
        while True:
            try: frame = next(frames)
            except StopIteration: return
            except av.FFmpegError as e:
                raise UserError(f"{path}: frame {i + 1} does not decode ({getattr(e, 'strerror', None) or e}); "
                                "the file is damaged: re-encode or cut it") from None
            i += 1
            t = float(frame.time) if frame.time is not None else i/rate
            start = t if start is None else start
            t -= start
            if every is not None and i % every: continue
            if fps is not None:
                if t + 1e-6 < due: continue
                due = (int(t*fps + 1e-6) + 1)/fps
            img = frame.to_image()
            yield i, t, img.rotate(frame.rotation, expand=True) if getattr(frame, 'rotation', 0) else img

def video_rate(path) -> Fraction:
    "The average frame rate of `path`'s first video stream (25 when the file does not say)."
    with _av().open(str(path)) as c:
        s = c.streams.video[0]
        return Fraction(s.average_rate or s.guessed_rate or 25)

def video_format(path) -> str:
    "FFmpeg's name of the container `write_video` writes for `path`'s extension; a `UserError` if none."
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise UserError(f"{path}: cannot write {path.suffix or 'a file without extension'} video; "
                        f"name it {', '.join(VIDEO_FORMATS)}")
    return VIDEO_FORMATS[path.suffix.lower()]

def write_video(path, frames:Iterable[Image.Image], rate:Fraction) -> Path:
    """Encode `frames` (RGB images of one size) at `rate` frames per second into the new file `path` (`VIDEO_FORMATS`
    by its extension), through a temporary file: a failure leaves nothing. Video only: no audio track."""
    av, path, fmt = _av(), Path(path), video_format(path)
    codec = 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'
    with atomic_path(path) as tmp, av.open(str(tmp), 'w', format=fmt) as c:
        stream = None
        for img in frames:
            if stream is None:
                stream = c.add_stream(codec, rate=rate)
                stream.width, stream.height, stream.pix_fmt = img.width//2*2, img.height//2*2, 'yuv420p'
            frame = av.VideoFrame.from_image(img.convert('RGB').crop((0, 0, stream.width, stream.height)))
            c.mux(stream.encode(frame))
        if stream is None: raise UserError(f"{path}: no frames to write")
        c.mux(stream.encode())
    return path
