"RAF-DB conversion from a small generated copy of the official layout."
import numpy as np, pandas as pd, pytest
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.convert import RAFDB_CLASSES, convert_rafdb
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
        Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(root/'Image'/'aligned'/n.replace('.jpg', '_aligned.jpg'))
    return root, dict(train + test), dict(noisy)

def test_convert_rafdb_with_noise(rafdb, tmp_path):
    root, clean, noisy = rafdb
    out = tmp_path/'out'/'rafdb_noise10.csv'
    df = convert_rafdb(root, out, root/'EmoLabel'/'noise01.txt')
    assert (pd.read_csv(out) == df).all().all() and len(df) == 21
    assert list(df.columns) == ['image', 'label', 'split', 'clean_label']
    row = df.iloc[0]
    assert row.image == '../raf-basic/Image/aligned/train_00001_aligned.jpg' and (out.parent/row.image).is_file()
    assert row.label == RAFDB_CLASSES[noisy['train_00001.jpg'] - 1] and row.clean_label == RAFDB_CLASSES[clean['train_00001.jpg'] - 1]
    assert RAFDB_CLASSES[0] == 'Surprise' and RAFDB_CLASSES[6] == 'Neutral'                 # label 1 = Surprise, 7 = Neutral
    test = df[df.split == 'test']
    assert len(test) == 7 and (test.label == test.clean_label).all()                       # test labels from the clean file
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
    for bad, words in [(good.replace(' 1\n', ' 0\n', 1), 'is not in 1..7'), (good + '\ntrain_09999.jpg', "expected '<image name> <label 1-7>'"),
                       (good + '\nfoo_1.jpg 3', 'does not start with train_'), (good + '\ntrain_00001.jpg 2', 'listed twice')]:
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
    r = runner.invoke(app, ['convert', 'rafdb', str(root), '--noise', str(root/'EmoLabel'/'noise01.txt'), '-o', str(out)])
    assert r.exit_code == 0, r.output
    before = out.read_text()
    r = runner.invoke(app, ['convert', 'rafdb', str(root), '-o', str(out)])
    assert r.exit_code == 2 and 'already exists' in r.output and out.read_text() == before

def test_rafdb_recipe_end_to_end(rafdb, tmp_path, settings_file):
    "The shipped RAF-DB recipe on a converted miniature RAF-DB and a local checkpoint in RUL's layout, paths from settings.ini."
    import json, shutil, torch, torchvision
    from pathlib import Path
    root, _, _ = rafdb
    data = settings_file.parent/'data'/'rafdb'
    shutil.copytree(root, data/'raf-basic')
    convert_rafdb(data/'raf-basic', data/'rafdb_noise30.csv', data/'raf-basic'/'EmoLabel'/'noise01.txt')
    (settings_file.parent/'weights').mkdir()
    torch.save({'state_dict': torchvision.models.resnet18().state_dict()}, settings_file.parent/'weights'/'resnet18_msceleb.pth')
    recipe = Path(__file__).parent.parent/'recipes'/'rafdb_eac_r18.yaml'
    r = CliRunner().invoke(app, ['train', str(recipe), 'train.epochs=1', 'data.img_size=32', 'data.bs=8', 'data.num_workers=0'])
    assert r.exit_code == 0, r.output
    (run,) = (settings_file.parent/'runs').iterdir()
    preds = pd.read_csv(run/'preds_test.csv')
    assert len(preds) == 7 and (preds.split == 'test').all()
    assert json.loads((run/'metrics.json').read_text())['valid_split'] == 'test'
