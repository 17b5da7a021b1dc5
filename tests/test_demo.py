"The built-in demo data: deterministic, balanced, exactly as noisy as asked, clean outside train."
import numpy as np, pandas as pd
from PIL import Image
from eac_fastai.data.convert import RAFDB_CLASSES
from eac_fastai.data.demo import DemoSpec, demo_dataset, draw_face, make_demo_dataset

def test_demo_dataset(tmp_path):
    spec = DemoSpec(n_train=10, n_valid=3, n_test=2, size=40, noise=0.2, seed=5)
    csv = make_demo_dataset(tmp_path/'a', spec)
    df = pd.read_csv(csv)
    assert list(df.columns) == ['image', 'label', 'split', 'clean_label']
    assert df.split.value_counts().to_dict() == {'train': 70, 'valid': 21, 'test': 14}
    per_class = df.groupby(['split', 'clean_label']).size()
    assert (per_class['train'] == 10).all() and (per_class['valid'] == 3).all() and (per_class['test'] == 2).all()
    assert len(per_class) == 21
    train = df[df.split == 'train']
    assert (train.label != train.clean_label).sum() == 14                                 # 20% of 10 per class, exactly
    assert (df[df.split != 'train'].label == df[df.split != 'train'].clean_label).all()
    im = Image.open(csv.parent/df.image[0])
    assert im.size == (40, 40) and im.mode == 'RGB'
    again = make_demo_dataset(tmp_path/'b', spec)
    assert pd.read_csv(again).equals(df)
    assert np.array_equal(np.asarray(Image.open(again.parent/df.image[5])),
                          np.asarray(Image.open(csv.parent/df.image[5])))
    assert demo_dataset(tmp_path, spec) == tmp_path/f'demo-{spec.key}'/'labels.csv'
    assert not list(tmp_path.glob('.demo-*'))                                               # no half-written folders

def test_faces_are_near_symmetric_and_vary():
    rng = np.random.default_rng(0)
    faces = [np.asarray(draw_face(c, rng, 64), dtype=float) for c in RAFDB_CLASSES for _ in range(3)]
    asym = np.mean([np.abs(f - f[:, ::-1]).mean() for f in faces])
    other = np.mean([np.abs(a - b).mean() for a, b in zip(faces, faces[1:])])
    assert asym < 0.5*other                                                       # mirror ≈ itself, unlike another face
