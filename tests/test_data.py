"The noisy-label CSV: checks with file and line numbers, and the DataBlock that reads it."
import re
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from eac_fastai.data.core import label_dataloaders, read_label_csv, train_noise_rate
from eac_fastai.errors import UserError

def write(tmp_path, text, name='labels.csv'):
    f = tmp_path/name; f.write_text(text); return f

def test_csv_errors_name_file_and_line(tmp_path):
    cases = [('image,label\na.png,x\n', 'missing column'), ('image,label,split\n', 'no rows'),
             ('image,label,split\na.png,x,train\nb.png,y,val\n', 'line(s) 3'),
             ('image,label,split\na.png,,train\n', 'empty `label` on line(s) 2'),
             ('image,label,split,clean_label\na.png,x,train,z\n', '`clean_label` on line(s) 2')]
    for text, words in cases:
        with pytest.raises(UserError, match=re.escape(words)) as e:
            read_label_csv(write(tmp_path, text), ['x', 'y'] if 'z' in text else None)
        assert 'labels.csv' in str(e.value)
    with pytest.raises(UserError, match=r'`label` on line\(s\) 3'):
        read_label_csv(write(tmp_path, 'image,label,split\na.png,x,train\nb.png,q,train\n'), ['x', 'y'])
    with pytest.raises(UserError, match='not found'): read_label_csv(tmp_path/'none.csv')

def test_vocabulary_explicit_or_sorted(tmp_path):
    f = write(tmp_path, 'image,label,split,clean_label\na.png,b,train,c\nb.png,a,test,a\n')
    # the sorted given labels; a clean label outside them is named with its column and line
    with pytest.raises(UserError, match=r"`clean_label` on line\(s\) 2 not among the classes \['a', 'b'\]"):
        read_label_csv(f)
    assert read_label_csv(f, ['c', 'b', 'a'])[1] == ['c', 'b', 'a']
    with pytest.raises(UserError, match=r"lists \['a'\] more than once"): read_label_csv(f, ['a', 'b', 'c', 'a'])

def test_dataloaders_from_demo_csv(demo_csv):
    dls = label_dataloaders(demo_csv, img_size=24, bs=8,
                            classes=['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral'])
    assert list(dls.vocab) == ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral']
    assert len(dls.train_ds) == 56 and len(dls.valid_ds) == 28
    x, y = dls.valid.one_batch()
    assert x.shape == (8, 3, 24, 24) and x.min() < -0.5                      # normalised: [0, 1] pixels would stay >= 0
    assert any(type(t).__name__ == 'Normalize' for t in dls.after_batch.fs)
    test = label_dataloaders(demo_csv, img_size=24, bs=8, valid_split='test')
    assert len(test.valid_ds) == 14
    df = pd.read_csv(demo_csv)
    train_labels = [dls.vocab[int(y)] for _, y in dls.train_ds]
    assert sorted(train_labels) == sorted(df.label[df.split == 'train'])       # the given (noisy) labels are trained on

def test_train_noise_rate_counts_only_rows_with_a_clean_label(demo_csv, tmp_path):
    df = pd.read_csv(demo_csv)
    train = df.split == 'train'
    noisy = (df.label != df.clean_label)[train]
    assert train_noise_rate(label_dataloaders(demo_csv, img_size=16, bs=8)) == pytest.approx(noisy.mean())
    unknown = df.index[train][::2]                                     # every other training row: clean label not known
    df.loc[unknown, 'clean_label'] = ''
    f = tmp_path/'partly_known.csv'; df.to_csv(f, index=False)
    known = train & (df.clean_label.fillna('') != '')
    assert train_noise_rate(label_dataloaders(f, root=demo_csv.parent, img_size=16, bs=8)) == pytest.approx(
        (df.label != df.clean_label)[known].mean())
    df.loc[train, 'clean_label'] = ''; df.to_csv(f, index=False)
    assert train_noise_rate(label_dataloaders(f, root=demo_csv.parent, img_size=16, bs=8)) is None

def test_missing_images_and_empty_classes(demo_csv, tmp_path):
    df = pd.read_csv(demo_csv)
    df.loc[3, 'image'] = 'images/train/nope.png'
    f = tmp_path/'x.csv'; df.to_csv(f, index=False)
    with pytest.raises(UserError, match=r'1 image\(s\) not found.*line 5: images/train/nope.png'):
        label_dataloaders(f, root=demo_csv.parent, img_size=24)
    df = pd.read_csv(demo_csv)
    df = df[~((df.label == 'Fear') & (df.split == 'train'))]
    df.to_csv(f, index=False)
    with pytest.raises(UserError, match='Fear have no training images'):
        label_dataloaders(f, root=demo_csv.parent, img_size=24)
    with pytest.raises(UserError, match='no rows with split=valid'):
        df[df.split != 'valid'].to_csv(f, index=False); label_dataloaders(f, root=demo_csv.parent)

def test_absolute_image_paths(demo_csv, tmp_path):
    df = pd.read_csv(demo_csv)
    df['image'] = [str(demo_csv.parent/p) for p in df.image]
    f = tmp_path/'abs.csv'; df.to_csv(f, index=False)
    dls = label_dataloaders(f, img_size=16, bs=8)
    assert dls.one_batch()[0].shape == (8, 3, 16, 16)

def test_class_balanced_sampler_draws_every_class_equally(demo_csv):
    from fastai.torch_core import set_seed
    from eac_fastai.data.core import class_balanced_weights
    labels = pd.Series(['a', 'a', 'a', 'b'])
    assert class_balanced_weights(labels).tolist() == [1/3, 1/3, 1/3, 1.]
    # counted over train rows
    assert class_balanced_weights(labels, pd.Series([True, False, True, True])).tolist() == [0.5, 0., 0.5, 1.]
    set_seed(0)
    dls = label_dataloaders(demo_csv, img_size=8, bs=8, balanced=True)
    counts = dls.train_ds.items.label.value_counts()
    assert counts.max() > counts.min()                                    # the given labels are imbalanced
    drawn = pd.Series([dls.vocab[int(y)] for _ in range(30) for _, yb in dls.train for y in yb]).value_counts()
    assert len(drawn) == len(dls.vocab) and drawn.sum() == 30*len(dls.train_ds)
    assert (drawn - drawn.mean()).abs().max() < 0.25*drawn.mean()         # with replacement, ∝ 1/count: about equal
    # validation unchanged
    assert [int(y) for _, yb in dls.valid for y in yb] == [dls.vocab.o2i[l] for l in dls.valid_ds.items.label]

def test_cached_batches_equal_the_datablock_pipeline(demo_csv):
    from eac_fastai.data.core import CachedImages
    plain = label_dataloaders(demo_csv, img_size=24, bs=8, device='cpu')
    cached = label_dataloaders(demo_csv, img_size=24, bs=8, device='cpu', cache=True)
    assert isinstance(cached.train_ds, CachedImages) and list(cached.vocab) == list(plain.vocab)
    assert cached.train_ds.items.label.tolist() == plain.train_ds.items.label.tolist()
    for a, b in zip(plain.valid, cached.valid):                      # same order, same tensors, same labels
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert len(cached.train) == len(plain.train)
    weighted = label_dataloaders(demo_csv, img_size=24, bs=8, device='cpu', cache=True, balanced=True)
    assert type(weighted.train).__name__ == 'WeightedDL'

def test_exported_pipeline_reads_paths_like_training(demo_csv):
    from eac_fastai.data.core import inference_dataloaders
    cached = label_dataloaders(demo_csv, img_size=24, bs=8, device='cpu', cache=True)
    paths = cached.valid_ds.items.path[:3].tolist()
    batch = inference_dataloaders(cached).test_dl(paths).one_batch()[0]
    assert torch.equal(batch, cached.valid.one_batch()[0][:3])

def test_load_rgb_converts_every_mode(tmp_path):
    from eac_fastai.data.core import load_rgb
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)*4
    rgb = np.repeat(gray[..., None], 3, 2)
    Image.fromarray(gray).save(tmp_path/'l.png')
    Image.fromarray(gray.astype(np.uint16)*257).save(tmp_path/'i16.png')             # 16-bit: scaled back to 8 bits
    Image.fromarray(np.dstack([rgb, np.full((8, 8), 255, np.uint8)])).save(tmp_path/'rgba.png')
    Image.fromarray(rgb).convert('P').save(tmp_path/'p.png')
    assert Image.open(tmp_path/'i16.png').mode.startswith('I')
    for name in ('l', 'i16', 'rgba'):
        im = load_rgb(tmp_path/f'{name}.png')
        assert im.mode == 'RGB' and np.array_equal(np.asarray(im), rgb), name
    assert load_rgb(tmp_path/'p.png').mode == 'RGB'
    assert (load_rgb(dict(path=tmp_path/'l.png')).mode == 'RGB'
            and load_rgb(Image.open(tmp_path/'rgba.png')).mode == 'RGB')
