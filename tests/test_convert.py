"""Dataset converters (RAF-DB, FERPlus, AffectNet, CIFAR-100, Tiny-ImageNet, ImageFolder) on tiny generated copies of
the official layouts."""
import pickle
import numpy as np, pandas as pd, pytest
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data import convert as C
from eac_fastai.data.convert import (RAFDB_CLASSES, FERPLUS_CLASSES, FERPLUS_VOTES, AFFECTNET_CLASSES,
                                     AFFECTNET_CLASSES8, conversion_summary, convert_affectnet, convert_cifar100,
                                     convert_ferplus, convert_imagefolder, convert_rafdb, convert_tinyimagenet,
                                     ferplus_winners)
from eac_fastai.data.core import read_label_csv
from eac_fastai.errors import UserError

@pytest.fixture
def rafdb(tmp_path):
    "raf-basic/ with 14 train and 7 test images, 1-indexed labels, no trailing newline (as shipped), and a noise file."
    root = tmp_path/'raf-basic'
    (root/'EmoLabel').mkdir(parents=True); (root/'Image'/'aligned').mkdir(parents=True)
    train = [(f'train_{i:05d}.jpg', i % 7 + 1) for i in range(1, 15)]
    test = [(f'test_{i:04d}.jpg', (i*3) % 7 + 1) for i in range(1, 8)]
    (root/'EmoLabel'/'list_patition_label.txt').write_text('\n'.join(f'{n} {l}' for n, l in train + test))
    noisy = [(n, l % 7 + 1 if i % 4 == 0 else l) for i, (n, l) in enumerate(train)]   # every 4th label moved
    (root/'EmoLabel'/'noise01.txt').write_text('\n'.join(f'{n} {l}' for n, l in noisy))
    for n, _ in train + test:
        Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(
            root/'Image'/'aligned'/n.replace('.jpg', '_aligned.jpg'))
    return root, dict(train + test), dict(noisy)

def test_convert_rafdb_with_noise(rafdb, tmp_path):
    root, clean, noisy = rafdb
    out = tmp_path/'out'/'rafdb_noise10.csv'
    df = convert_rafdb(root, out, root/'EmoLabel'/'noise01.txt')
    assert (pd.read_csv(out) == df).all().all() and len(df) == 21
    assert list(df.columns) == ['image', 'label', 'split', 'clean_label']
    row = df.iloc[0]
    assert row.image == '../raf-basic/Image/aligned/train_00001_aligned.jpg' and (out.parent/row.image).is_file()
    assert (row.label == RAFDB_CLASSES[noisy['train_00001.jpg'] - 1]
            and row.clean_label == RAFDB_CLASSES[clean['train_00001.jpg'] - 1])
    assert RAFDB_CLASSES[0] == 'Surprise' and RAFDB_CLASSES[6] == 'Neutral'            # label 1 = Surprise, 7 = Neutral
    test = df[df.split == 'test']
    assert len(test) == 7 and (test.label == test.clean_label).all()                  # test labels from the clean file
    train = df[df.split == 'train']
    assert (train.label != train.clean_label).sum() == 4

def test_convert_rafdb_clean(rafdb, tmp_path):
    root, clean, _ = rafdb
    df = convert_rafdb(root, tmp_path/'clean.csv')
    assert (df.label == df.clean_label).all() and (df.split == 'train').sum() == 14

def test_convert_rafdb_rejects_bad_input(rafdb, tmp_path):
    root, _, _ = rafdb
    labels = root/'EmoLabel'/'list_patition_label.txt'
    good = labels.read_text()
    for bad, words in [(good.replace(' 1\n', ' 0\n', 1), 'is not in 1..7'),
                       (good + '\ntrain_09999.jpg', "expected '<image name> <label 1-7>'"),
                       (good + '\nfoo_1.jpg 3', 'does not start with train_'),
                       (good + '\ntrain_00001.jpg 2', 'listed twice')]:
        labels.write_text(bad)
        with pytest.raises(UserError, match=words) as e: convert_rafdb(root, tmp_path/'x.csv')
        assert 'list_patition_label.txt:' in str(e.value)                                 # file:line
    labels.write_text(good)
    short = tmp_path/'short.txt'; short.write_text('train_00001.jpg 2')
    with pytest.raises(UserError, match='train images without a label'): convert_rafdb(root, tmp_path/'x.csv', short)
    (root/'Image'/'aligned'/'test_0003_aligned.jpg').unlink()
    with pytest.raises(UserError, match='1 aligned image'): convert_rafdb(root, tmp_path/'x.csv')
    assert not (tmp_path/'x.csv').exists()
    assert len(convert_rafdb(root, tmp_path/'x.csv', check_images=False)) == 21

def test_convert_cli_never_overwrites(rafdb, tmp_path):
    root, _, _ = rafdb
    out, runner = tmp_path/'r.csv', CliRunner()
    r = runner.invoke(app, ['convert', 'rafdb', str(root), '--noise', str(root/'EmoLabel'/'noise01.txt'),
                            '-o', str(out)])
    assert r.exit_code == 0, r.output
    before = out.read_text()
    r = runner.invoke(app, ['convert', 'rafdb', str(root), '-o', str(out)])
    assert r.exit_code == 2 and 'already exists' in r.output and out.read_text() == before

def test_rafdb_recipe_end_to_end(rafdb, tmp_path, settings_file):
    """The shipped RAF-DB recipe on a converted miniature RAF-DB and a local checkpoint in RUL's layout, paths from
    settings.ini."""
    import json, shutil, torch, torchvision
    from pathlib import Path
    root, _, _ = rafdb
    data = settings_file.parent/'data'/'rafdb'
    shutil.copytree(root, data/'raf-basic')
    convert_rafdb(data/'raf-basic', data/'rafdb_noise30.csv', data/'raf-basic'/'EmoLabel'/'noise01.txt')
    (settings_file.parent/'weights').mkdir()
    torch.save({'state_dict': torchvision.models.resnet18().state_dict()},
               settings_file.parent/'weights'/'resnet18_msceleb.pth')
    recipe = Path(__file__).parent.parent/'recipes'/'rafdb_eac_r18.yaml'
    r = CliRunner().invoke(app, ['train', str(recipe), 'train.epochs=1', 'data.img_size=32', 'data.bs=8',
                                 'data.num_workers=0'])
    assert r.exit_code == 0, r.output
    (run,) = (settings_file.parent/'runs').iterdir()
    preds = pd.read_csv(run/'preds_test.csv')
    assert len(preds) == 7 and (preds.split == 'test').all()
    assert json.loads((run/'metrics.json').read_text())['valid_split'] == 'test'

# ---- FERPlus, AffectNet, CIFAR-100, Tiny-ImageNet, ImageFolder: tiny copies of the official layouts ----

def leftovers(folder):
    "Temporary or backup folders a converter left behind."
    return [p.name for p in folder.iterdir() if '.tmp-' in p.name or '.old-' in p.name]

FER_ROWS = [  # (Usage, Image name, votes): majority / argmax outcome
    ('Training', 'fer0000000.png', dict(happiness=8, neutral=2)),                    # Happiness / Happiness
    ('Training', 'fer0000001.png', dict(neutral=4, sadness=3, anger=3)),             # no majority / Neutral
    ('Training', 'fer0000002.png', dict(surprise=5, fear=5)),                        # no majority / tie
    ('Training', 'fer0000003.png', dict(contempt=7, neutral=3)),                     # contempt (7 classes)
    ('Training', 'fer0000004.png', dict(unknown=6, happiness=4)),                    # unknown
    ('Training', '', dict(happiness=10)),                                            # no image
    # single votes dropped: Disgust
    ('Training', 'fer0000006.png', dict(disgust=4, anger=1, fear=1, sadness=1, neutral=1, happiness=1, NF=1)),
    ('Training', 'fer0000007.png', dict(anger=10)),
    ('Training', 'fer0000008.png', dict(sadness=10)),
    ('PublicTest', 'fer0000009.png', dict(NF=10)),                                   # not a face
    ('PublicTest', 'fer0000010.png', dict(happiness=10)),
    ('PublicTest', 'fer0000011.png', dict(disgust=10)),
    ('PrivateTest', 'fer0000012.png', dict(anger=9, fear=1)),
    ('PrivateTest', 'fer0000013.png', dict(sadness=6, neutral=4))]

@pytest.fixture
def ferplus(tmp_path):
    "fer2013.csv (emotion,pixels,Usage) and fer2013new.csv (Usage,Image name,10 vote columns) for 14 faces."
    src = tmp_path/'fer'; src.mkdir()
    px = np.random.default_rng(0).integers(0, 256, (len(FER_ROWS), 48*48))
    pd.DataFrame(dict(emotion=3, pixels=[' '.join(map(str, p)) for p in px],
                      Usage=[u for u, _, _ in FER_ROWS])).to_csv(src/'fer2013.csv', index=False)
    pd.DataFrame([{'Usage': u, 'Image name': n, **{c: v.get(c, 0) for c in FERPLUS_VOTES}}
                  for u, n, v in FER_ROWS]).to_csv(src/'fer2013new.csv', index=False)
    return src/'fer2013.csv', src/'fer2013new.csv', px

def test_ferplus_winners():
    votes = [[8, 2, 0, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 3, 3, 0, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],
             [1, 1, 4, 1, 1, 0, 0, 0, 0, 1], [0]*10]
    assert ferplus_winners(votes).tolist() == [0, -1, -1, 2, -1]    # > half after dropping single votes; ties never win
    assert ferplus_winners(votes, 'argmax').tolist() == [0, 0, -1, 2, -1]
    with pytest.raises(UserError, match='majority'): ferplus_winners(votes, 'mean')

def test_convert_ferplus_majority(ferplus, tmp_path):
    fer, new, px = ferplus
    out = tmp_path/'out'/'ferplus.csv'
    df = convert_ferplus(fer, new, out)
    assert df.image.tolist()[:2] == ['ferplus/Training/fer0000000.png', 'ferplus/Training/fer0000006.png']
    assert df.label.tolist() == ['Happiness', 'Disgust', 'Anger', 'Sadness', 'Happiness', 'Disgust', 'Anger', 'Sadness']
    assert df.split.tolist() == ['train']*4 + ['valid']*2 + ['test']*2
    assert df.attrs['skipped'] == {'no image name': 1, 'no majority': 2, 'unknown or not a face': 2,
                                   'contempt (7 classes)': 1}
    assert df.attrs['classes'] == list(FERPLUS_CLASSES) == list(RAFDB_CLASSES)
    im = Image.open(out.parent/'ferplus'/'PrivateTest'/'fer0000012.png')
    assert im.mode == 'L' and im.size == (48, 48) and (np.array(im) == px[12].reshape(48, 48)).all()
    assert len(list((out.parent/'ferplus').rglob('*.png'))) == 8 and not leftovers(out.parent)
    got, classes = read_label_csv(out, FERPLUS_CLASSES)
    assert (got == df).all().all()
    assert conversion_summary(df) == ('4 train + 2 valid + 2 test rows, 7 classes; skipped 6 (1 no image name, '
                                      '2 no majority, 2 unknown or not a face, 1 contempt (7 classes))')
    from eac_fastai.data.core import label_dataloaders
    xb, yb = label_dataloaders(out, img_size=32, bs=4, device='cpu').one_batch()
    assert xb.shape == (4, 3, 32, 32) and len(yb) == 4

def test_convert_ferplus_argmax_and_contempt(ferplus, tmp_path):
    fer, new, _ = ferplus
    df = convert_ferplus(fer, new, tmp_path/'a.csv', mode='argmax', num_workers=2)
    assert df.label.tolist()[:3] == ['Happiness', 'Neutral', 'Disgust'] and len(df) == 9
    assert df.attrs['skipped'] == {'no image name': 1, 'tied top votes': 1, 'unknown or not a face': 2,
                                   'contempt (7 classes)': 1}
    df = convert_ferplus(fer, new, tmp_path/'m8.csv', classes=8, images='img8')
    assert 'contempt (7 classes)' not in df.attrs['skipped'] and df.label.tolist()[1] == 'Contempt'
    assert df.image[1] == 'img8/Training/fer0000003.png' and df.attrs['classes'][-1] == 'Contempt'

def test_convert_ferplus_rejects_bad_input(ferplus, tmp_path):
    fer, new, _ = ferplus
    read = lambda f: pd.read_csv(f, dtype=str, keep_default_na=False)
    good_fer, good_new, out = read(fer), read(new), tmp_path/'out'/'f.csv'
    def expect(words, where, f=good_fer, n=good_new, **kw):
        f.to_csv(fer, index=False); n.to_csv(new, index=False)
        with pytest.raises(UserError, match=words) as e: convert_ferplus(fer, new, out, **kw)
        assert where in str(e.value)
        assert (not out.exists() and not (out.parent/'f').exists()
                and (not out.parent.exists() or not leftovers(out.parent)))
    bad = good_fer.copy(); bad.loc[13, 'pixels'] = ' '.join(['7']*2300)
    expect('2304', 'fer2013.csv:15:', f=bad)                                # last kept row: earlier images were written
    bad = good_fer.copy(); bad.loc[0, 'pixels'] = ' '.join(['x'] + ['1']*2303)
    expect('not all integers', 'fer2013.csv:2:', f=bad)
    expect('missing column.*pixels', 'fer2013.csv', f=good_fer.drop(columns='pixels'))
    bad = good_new.copy(); bad.loc[4, 'anger'] = 'two'
    expect('`anger`', 'fer2013new.csv:6:', n=bad)
    bad = good_new.copy(); bad.loc[2, 'Usage'] = 'PublicTest'
    expect('differs', 'fer2013new.csv:4:', n=bad)
    bad = good_fer.copy(); bad.loc[3, 'Usage'] = 'Validation'
    expect('not one of', 'fer2013.csv:5:', f=bad)
    bad = good_new.copy(); bad.loc[0, 'Image name'] = '../x.png'
    expect('plain file name', 'fer2013new.csv:2:', n=bad)
    expect('has 13 rows', 'fer2013new.csv', n=good_new.iloc[:13])
    expect("mode 'soft'", 'majority', mode='soft')
    expect('classes=6', 'use 7', classes=6)
    with pytest.raises(UserError, match='nope.csv: fer2013.csv not found'):
        convert_ferplus(tmp_path/'nope.csv', new, out)

def test_convert_ferplus_never_overwrites(ferplus, tmp_path, monkeypatch):
    fer, new, _ = ferplus
    out = tmp_path/'f.csv'
    convert_ferplus(fer, new, out)
    before = out.read_text()
    with pytest.raises(UserError, match='f.csv: already exists'): convert_ferplus(fer, new, out, mode='argmax')
    out.unlink()
    with pytest.raises(UserError, match='images folder already exists'): convert_ferplus(fer, new, out, mode='argmax')
    (tmp_path/'f'/'mine.txt').write_text('keep me')
    def broken(*a): raise OSError('disk full')
    # fails after the images were renamed in
    monkeypatch.setattr(C.staging, 'write_atomic', broken)
    with pytest.raises(OSError): convert_ferplus(fer, new, out, mode='argmax', overwrite=True)
    assert (tmp_path/'f'/'mine.txt').exists() and not out.exists() and not leftovers(tmp_path)   # old images put back
    monkeypatch.undo()
    out.write_text(before)
    df = convert_ferplus(fer, new, out, mode='argmax', overwrite=True)
    assert len(pd.read_csv(out)) == len(df) == 9 and not (tmp_path/'f'/'mine.txt').exists() and not leftovers(tmp_path)
    with pytest.raises(UserError, match='without'): convert_ferplus(fer, new, tmp_path/'g.csv', images='../x')
    with pytest.raises(UserError, match='would replace the input'):
        convert_ferplus(fer, new, tmp_path/'g.csv', images='fer', overwrite=True)
    assert (tmp_path/'fer'/'fer2013.csv').exists()

@pytest.fixture
def affectnet(tmp_path):
    """Manually_Annotated_Images/ with small JPEGs (+ a PNG, a broken file), training.csv with a header, validation.csv
    without (as shipped)."""
    root = tmp_path/'AffectNet'; imgs = root/'Manually_Annotated_Images'
    rng = np.random.default_rng(1)
    for name, size in [('1/a.jpg', (40, 30)), ('1/b.jpg', (40, 30)), ('1/c.jpg', (40, 30)), ('2/d.jpg', (40, 30)),
                       ('2/e.jpg', (40, 30)), ('2/f.png', (40, 30)), ('3/g.jpg', (50, 50)), ('3/h.jpg', (50, 50))]:
        (imgs/name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(imgs/name)
    (imgs/'2'/'bad.jpg').write_text('not a jpeg')
    lm = '"1.0;2.0;3.0;4.0"'
    train = [('1/a.jpg', 5, 4, 20, 16, 1), ('1/b.jpg', 0, 0, 40, 30, 0), ('1/c.jpg', 0, 0, 10, 10, 7),
             ('2/d.jpg', 0, 0, 10, 10, 8), ('2/e.jpg', 0, 0, 0, 10, 3), ('2/missing.jpg', 0, 0, 10, 10, 3),
             ('2/bad.jpg', 0, 0, 10, 10, 4), ('2/f.png', 30, 20, 20, 20, 6)]
    valid = [('3/g.jpg', 10, 10, 20, 20, 2), ('3/h.jpg', 0, 0, 10, 10, 10), ('3/g.jpg', 10, 10, 20, 20, 2),
             ('3/h.jpg', 60, 60, 10, 10, 5)]
    row = lambda r: ','.join(map(str, r[:5])) + f',{lm},{r[5]},0.1,-0.2'
    (root/'training.csv').write_text(','.join(C.affectnet._AFFECTNET_COLUMNS) + '\n'
                                     + '\n'.join(map(row, train)) + '\n')
    (root/'validation.csv').write_text('\n'.join(map(row, valid)) + '\n')
    return root

def test_convert_affectnet(affectnet, tmp_path):
    root = affectnet
    out = tmp_path/'out'/'affectnet7.csv'
    df = convert_affectnet(root/'training.csv', root/'validation.csv', root/'Manually_Annotated_Images', out,
                           ext='.png', num_workers=2)
    assert df.image.tolist() == ['affectnet7/train/1/a.png', 'affectnet7/train/1/b.png', 'affectnet7/train/2/f.png',
                                 'affectnet7/test/3/g.png']
    assert (df.label.tolist() == ['Happiness', 'Neutral', 'Anger', 'Sadness']
            and df.split.tolist() == ['train']*3 + ['test'])
    assert df.attrs['skipped'] == {'contempt (7 classes)': 1, 'no expression (8-10)': 2, 'non-positive face size': 1,
                                   'repeated row': 1, 'missing image': 1, 'unreadable image': 1,
                                   'face box outside the image': 1}
    src = np.array(Image.open(root/'Manually_Annotated_Images'/'1'/'a.jpg').convert('RGB'))
    crop = np.array(Image.open(out.parent/df.image[0]))
    assert crop.shape == (16, 20, 3) and (crop == src[4:20, 5:25]).all()                  # box x=5, y=4, w=20, h=16
    src = np.array(Image.open(root/'Manually_Annotated_Images'/'2'/'f.png'))
    # box clipped to the 40×30 image
    assert (np.array(Image.open(out.parent/df.image[2])) == src[20:30, 30:40]).all()
    assert read_label_csv(out, AFFECTNET_CLASSES)[0].shape == (4, 3) and not leftovers(out.parent)
    df = convert_affectnet(root/'training.csv', root/'validation.csv', root/'Manually_Annotated_Images',
                           tmp_path/'a8.csv', classes=8, size=24)
    assert df.label.tolist()[2] == 'Contempt' and df.attrs['classes'] == list(AFFECTNET_CLASSES8)
    im = Image.open(tmp_path/df.image[0])
    assert df.image[0] == 'a8/train/1/a.jpg' and im.format == 'JPEG' and im.size == (24, 24)

def test_convert_affectnet_rejects_bad_input(affectnet, tmp_path):
    root = affectnet
    args = lambda: (root/'training.csv', root/'validation.csv', root/'Manually_Annotated_Images', tmp_path/'x.csv')
    good = (root/'training.csv').read_text()
    for bad, words, where in [(good.replace(',expression,', ',expr,'), 'missing column.*expression', 'training.csv'),
                              (good.replace('"1.0;2.0;3.0;4.0",1,', '"1.0;2.0;3.0;4.0",happy,'), '`expression`',
                               'training.csv:2:'),
                              (good.replace('"1.0;2.0;3.0;4.0",0,', '"1.0;2.0;3.0;4.0",12,'), 'in 0..10',
                               'training.csv:3:'),
                              (good.replace('1/b.jpg,0,', '1/b.jpg,zero,'), '`face_x`', 'training.csv:3:'),
                              (good.replace('1/a.jpg', '../a.jpg'), 'not a path inside', 'training.csv:2:')]:
        (root/'training.csv').write_text(bad)
        with pytest.raises(UserError, match=words) as e: convert_affectnet(*args())
        assert where in str(e.value) and not (tmp_path/'x.csv').exists() and not (tmp_path/'x').exists()
    (root/'training.csv').write_text(good)
    with pytest.raises(UserError, match='Manually_Annotated_Images folder not found'):
        convert_affectnet(*args()[:2], tmp_path/'no', tmp_path/'x.csv')
    with pytest.raises(UserError, match='use .jpg or .png'): convert_affectnet(*args(), ext='.gif')

@pytest.fixture
def cifar(tmp_path):
    "cifar-100-python/ with train (6), test (3) and meta pickled as Python 2 does: bytes keys, protocol 2."
    root = tmp_path/'cifar-100-python'; root.mkdir()
    rng = np.random.default_rng(2)
    dump = lambda obj, name: pickle.dump(obj, open(root/name, 'wb'), protocol=2)
    dump({b'fine_label_names': [b'apple', b'bear', b'cat'], b'coarse_label_names': [b'x']}, 'meta')
    batches = {}
    for split, n in (('train', 6), ('test', 3)):
        d = {b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8), b'fine_labels': [i % 3 for i in range(n)],
             b'coarse_labels': [0]*n, b'filenames': [f'img_{split}_{i}.png'.encode() for i in range(n)],
             b'batch_label': b'x'}
        dump(d, split); batches[split] = d
    return root, batches

def test_convert_cifar100(cifar, tmp_path):
    root, batches = cifar
    out = tmp_path/'c100.csv'
    df = convert_cifar100(root, out)
    assert (len(df) == 9 and df.split.tolist() == ['train']*6 + ['test']*3
            and df.label.tolist()[:4] == ['apple', 'bear', 'cat', 'apple'])
    assert df.image[7] == 'c100/test/00001_img_test_1.png' and df.attrs['classes'] == ['apple', 'bear', 'cat']
    im = np.array(Image.open(tmp_path/df.image[7]))
    assert im.shape == (32, 32, 3) and (im == batches['test'][b'data'][1].reshape(3, 32, 32).transpose(1, 2, 0)).all()
    # R, G planes
    assert im[0, 0, 0] == batches['test'][b'data'][1][0] and im[0, 0, 1] == batches['test'][b'data'][1][1024]
    read_label_csv(out)

def test_convert_cifar100_rejects_bad_input(cifar, tmp_path):
    root, batches = cifar
    for change, words in [({b'data': batches['train'][b'data'][:, :3000]}, r'shape \(6, 3000\), expected N×3072'),
                          ({b'fine_labels': [0, 1, 2, 3, 0, 1]}, r'fine_labels\[3\] = 3'),
                          ({b'fine_labels': [0]}, '6 integers')]:
        pickle.dump({**batches['train'], **change}, open(root/'train', 'wb'), protocol=2)
        with pytest.raises(UserError, match=words) as e: convert_cifar100(root, tmp_path/'x.csv')
        assert f'{root/"train"}:' in str(e.value) and not (tmp_path/'x').exists()
    pickle.dump({b'data': batches['train'][b'data']}, open(root/'train', 'wb'), protocol=2)
    with pytest.raises(UserError, match="no 'fine_labels' entry"): convert_cifar100(root, tmp_path/'x.csv')
    (root/'meta').unlink()
    with pytest.raises(UserError, match='meta: file not found'): convert_cifar100(root, tmp_path/'x.csv')

@pytest.fixture
def tiny(tmp_path):
    "tiny-imagenet-200/ with 3 wnids, 2 train images each, 3 annotated val images (and unlabelled test images)."
    root = tmp_path/'tiny-imagenet-200'
    wnids = ['n01443537', 'n01629819', 'n01641577']
    (root/'val'/'images').mkdir(parents=True); (root/'test'/'images').mkdir(parents=True)
    (root/'wnids.txt').write_text('\n'.join(wnids) + '\n')
    (root/'words.txt').write_text('\n'.join(f'{w}\tthing {i}' for i, w in enumerate(wnids)) + '\n')
    px = lambda v: Image.fromarray(np.full((8, 8, 3), v, np.uint8))
    for i, w in enumerate(wnids):
        (root/'train'/w/'images').mkdir(parents=True)
        (root/'train'/w/f'{w}_boxes.txt').write_text('')
        for j in range(2): px(i*10+j).save(root/'train'/w/'images'/f'{w}_{j}.JPEG')
    ann = [('val_0.JPEG', wnids[2]), ('val_1.JPEG', wnids[0]), ('val_2.JPEG', wnids[1])]
    for n, _ in ann: px(200).save(root/'val'/'images'/n)
    px(0).save(root/'test'/'images'/'test_0.JPEG')
    (root/'val'/'val_annotations.txt').write_text(''.join(f'{n}\t{w}\t0\t1\t7\t8\n' for n, w in ann))
    return root, wnids

def test_convert_tinyimagenet(tiny, tmp_path):
    root, wnids = tiny
    out = tmp_path/'csvs'/'tiny.csv'
    df = convert_tinyimagenet(root, out)
    assert len(df) == 9 and df.split.tolist() == ['train']*6 + ['test']*3 and df.attrs['classes'] == wnids
    assert df.image[0] == f'../tiny-imagenet-200/train/{wnids[0]}/images/{wnids[0]}_0.JPEG' and df.label[0] == wnids[0]
    assert df.image[6] == '../tiny-imagenet-200/val/images/val_0.JPEG' and df.label[6] == wnids[2]
    assert all((out.parent/p).is_file() for p in df.image)
    assert read_label_csv(out, wnids)[0].shape == (9, 3)

def test_convert_tinyimagenet_rejects_bad_input(tiny, tmp_path):
    root, wnids = tiny
    ann, good = root/'val'/'val_annotations.txt', (root/'val'/'val_annotations.txt').read_text()
    ann.write_text(good.replace(wnids[0], 'n99999999'))
    with pytest.raises(UserError, match=r"val_annotations.txt:2: unknown wnid 'n99999999'"):
        convert_tinyimagenet(root, tmp_path/'x.csv')
    ann.write_text(good + 'val_3.JPEG\n')
    with pytest.raises(UserError, match=r"val_annotations.txt:4: expected"):
        convert_tinyimagenet(root, tmp_path/'x.csv')
    ann.write_text(good + f'val_9.JPEG\t{wnids[0]}\t0\t0\t1\t1\n')
    with pytest.raises(UserError, match=r"1 image\(s\) missing.*line 4: val_9.JPEG"):
        convert_tinyimagenet(root, tmp_path/'x.csv')
    assert len(convert_tinyimagenet(root, tmp_path/'x.csv', check_images=False)) == 10
    ann.write_text(good)
    (root/'wnids.txt').write_text('\n'.join(wnids + [wnids[1]]))
    with pytest.raises(UserError, match=r'wnids.txt:4: n01629819 is listed twice'):
        convert_tinyimagenet(root, tmp_path/'y.csv')
    (root/'wnids.txt').write_text('\n'.join(wnids[:2]))
    with pytest.raises(UserError, match=r'n01641577 are not wnids listed'): convert_tinyimagenet(root, tmp_path/'y.csv')
    (root/'wnids.txt').write_text('\n'.join(wnids + ['n00000001']))
    with pytest.raises(UserError, match=r'n00000001/images: no images'): convert_tinyimagenet(root, tmp_path/'y.csv')
    with pytest.raises(UserError, match='x.csv: already exists'): convert_tinyimagenet(root, tmp_path/'x.csv')

def test_convert_imagefolder(tmp_path):
    root = tmp_path/'flat'
    for c, n in (('cat', 5), ('dog', 5), ('ant', 3)):
        (root/c/'sub').mkdir(parents=True)
        for i in range(n): Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root/c/f'{i}.png')
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root/'cat'/'sub'/'deep.JPG')      # nested, upper-case extension
    (root/'cat'/'notes.txt').write_text('x'); (root/'cat'/'.hidden.png').write_text('x'); (root/'empty').mkdir()
    df = convert_imagefolder(root, tmp_path/'f.csv')
    assert len(df) == 14 and (df.split == 'train').all() and df.attrs['classes'] == ['ant', 'cat', 'dog']
    assert 'flat/cat/sub/deep.JPG' in df.image.tolist() and not df.image.str.contains('hidden|notes').any()
    a = convert_imagefolder(root, tmp_path/'a.csv', valid_pct=0.4, seed=1)
    assert a.split.tolist() == convert_imagefolder(root, tmp_path/'b.csv', valid_pct=0.4, seed=1).split.tolist()
    assert a[a.split == 'valid'].label.value_counts().to_dict() == {'cat': 2, 'dog': 2, 'ant': 1}
    split = tmp_path/'split'
    for s, c in (('train', 'cat'), ('train', 'dog'), ('val', 'cat'), ('test', 'dog')):
        (split/s/c).mkdir(parents=True); Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(split/s/c/'0.jpeg')
    df = convert_imagefolder(split, tmp_path/'csvs'/'s.csv')
    assert df.split.tolist() == ['test', 'train', 'train', 'valid'] and df.image[3] == '../split/val/cat/0.jpeg'
    assert read_label_csv(tmp_path/'csvs'/'s.csv')[1] == ['cat', 'dog']
    with pytest.raises(UserError, match='has a valid/val folder already'):
        convert_imagefolder(split, tmp_path/'v.csv', valid_pct=.2)
    (split/'cat').mkdir()
    with pytest.raises(UserError, match=r'mixes split folders \(test, train, val\) with other folders \(cat\)'):
        convert_imagefolder(split, tmp_path/'v.csv')
    with pytest.raises(UserError, match='no images'): convert_imagefolder(root/'empty', tmp_path/'v.csv')
    with pytest.raises(UserError, match='valid_pct=1'): convert_imagefolder(root, tmp_path/'v.csv', valid_pct=1)

def test_convert_cli_for_every_dataset(ferplus, affectnet, cifar, tiny, tmp_path):
    """Each `eac-fastai convert` command writes its CSV and reports; malformed input exits with code 2 and names the
    file."""
    runner = CliRunner()
    fer, new, _ = ferplus
    root_c, _ = cifar
    root_t, _ = tiny
    folder = tmp_path/'folder'
    for c in ('a', 'b'):
        (folder/c).mkdir(parents=True); Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder/c/'0.png')
    for args in (['ferplus', str(fer), str(new)],
                 ['affectnet', str(affectnet/'training.csv'), str(affectnet/'validation.csv'),
                  str(affectnet/'Manually_Annotated_Images')],
                 ['cifar100', str(root_c)], ['tinyimagenet', str(root_t)], ['imagefolder', str(folder)]):
        out = tmp_path/'out'/f'{args[0]}.csv'
        r = runner.invoke(app, ['convert', *args, '-o', str(out)])
        assert r.exit_code == 0 and out.exists() and 'train' in r.output, r.output
        assert read_label_csv(out)[0].split.isin(['train', 'valid', 'test']).all()
        r = runner.invoke(app, ['convert', *args, '-o', str(out)])
        assert r.exit_code == 2 and 'already exists' in r.output
    (fer.parent/'broken.csv').write_text('emotion,pixels\n3,1 2 3\n')
    r = runner.invoke(app, ['convert', 'ferplus', str(fer.parent/'broken.csv'), str(new), '-o', str(tmp_path/'b.csv')])
    assert r.exit_code == 2 and 'broken.csv' in r.output and not (tmp_path/'b.csv').exists()

def _idx(path, arr:np.ndarray):
    "Write `arr` (uint8) as a gzipped IDX file, MNIST's format."
    import gzip
    head = bytes([0, 0, 8, arr.ndim]) + b''.join(d.to_bytes(4, 'big') for d in arr.shape)
    with gzip.open(path, 'wb') as f: f.write(head + arr.astype(np.uint8).tobytes())

@pytest.fixture
def fashion(tmp_path):
    "The four Fashion-MNIST IDX files with 40 train (4 per class) and 10 test images of 28×28."
    root, rng = tmp_path/'fashion-mnist', np.random.default_rng(0)
    root.mkdir()
    for stem, n in (('train', 40), ('t10k', 10)):
        x, y = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        _idx(root/f'{stem}-images-idx3-ubyte.gz', x); _idx(root/f'{stem}-labels-idx1-ubyte.gz', y)
    return root

def test_convert_fashion_mnist(fashion, tmp_path):
    out = tmp_path/'fm'/'fmnist.csv'
    df = C.convert_fashion_mnist(fashion, out, train_subset=20, seed=1)
    train, test = df[df.split == 'train'], df[df.split == 'test']
    assert len(train) == 20 and len(test) == 10 and (train.label.value_counts() == 2).all()      # 2 per class
    x = C.read_idx(fashion/'train-images-idx3-ubyte.gz')
    i = int(train.image.iloc[0].split('/')[-1][:-4])
    # pixels kept, grayscale PNG
    assert np.array_equal(np.asarray(Image.open(out.parent/train.image.iloc[0])), x[i])
    assert train.label.iloc[0] == C.FASHION_MNIST_CLASSES[i % 10]
    assert read_label_csv(out, C.FASHION_MNIST_CLASSES)[1] == list(C.FASHION_MNIST_CLASSES)
    assert C.convert_fashion_mnist(fashion, out, train_subset=20, seed=1, overwrite=True).equals(df)   # seeded

def test_convert_fashion_mnist_bad_input(fashion, tmp_path):
    with pytest.raises(UserError, match='multiple of 10'):
        C.convert_fashion_mnist(fashion, tmp_path/'a.csv', train_subset=15)
    raw = (fashion/'t10k-labels-idx1-ubyte.gz').read_bytes()
    (fashion/'t10k-labels-idx1-ubyte.gz').write_bytes(raw[:-3])
    with pytest.raises(UserError, match='t10k-labels-idx1-ubyte.gz'): C.convert_fashion_mnist(fashion, tmp_path/'b.csv')
    assert not (tmp_path/'b.csv').exists() and not (tmp_path/'b').exists()                     # nothing half-written
    r = CliRunner().invoke(app, ['convert', 'fashion-mnist', str(tmp_path/'none'), '-o', str(tmp_path/'c.csv')])
    assert r.exit_code == 2 and 'dataset-fashion-mnist' in r.output
