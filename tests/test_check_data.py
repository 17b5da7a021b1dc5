"`eac-fastai check-data`: every problem of a dataset at once; bad images met while training end as one clear error."
import shutil
import pandas as pd, pytest
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app
from eac_fastai.data.core import check_dataset, label_dataloaders
from eac_fastai.errors import UserError

@pytest.fixture
def dataset(demo_csv, tmp_path):
    "A writable copy of the demo dataset and a recipe reading it."
    root = tmp_path/'ds'
    shutil.copytree(demo_csv.parent, root)
    recipe = tmp_path/'r.yaml'
    recipe.write_text(f"data: {{csv: {root/'labels.csv'}, img_size: 32, bs: 16}}\ntrain: {{epochs: 1, device: cpu}}\n")
    return root/'labels.csv', recipe

def _truncated_jpeg(src, dest):
    Image.open(src).convert('RGB').resize((64, 64)).save(dest, quality=95)
    dest.write_bytes(dest.read_bytes()[:len(dest.read_bytes())//2])

def test_a_clean_dataset_passes_with_its_counts(dataset, settings_file):
    csv, recipe = dataset
    r = CliRunner().invoke(app, ['check-data', str(recipe)])
    assert r.exit_code == 0, r.output
    assert 'no problems found' in r.output and 'total' in r.output
    counts, problems, warnings = check_dataset(csv)
    assert problems == warnings == [] and counts.train.sum() == 7*8 and counts.values.sum() == len(pd.read_csv(csv))

def test_every_problem_reported_at_once(dataset, settings_file):
    csv, recipe = dataset
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    root = csv.parent
    (root/df.image[1]).unlink()                                               # missing file
    (root/df.image[2]).write_bytes(b'not an image')                           # corrupt file
    # truncated: the header still verifies
    _truncated_jpeg(root/df.image[3], root/'cut.jpg'); df.loc[3, 'image'] = 'cut.jpg'
    df.loc[4, 'label'] = 'Contempt'                                           # unknown label
    df.loc[5, 'split'] = 'holdout'                                            # unknown split
    df = pd.concat([df, df.iloc[[6]]])                                        # duplicate row
    df.to_csv(csv, index=False)
    before = sorted(p.stat().st_mtime_ns for p in csv.parent.rglob('*'))
    r = CliRunner().invoke(app, ['check-data', str(recipe),
                                 'data.classes=[Anger,Disgust,Fear,Happiness,Neutral,Sadness,Surprise]'])
    assert r.exit_code == 2
    out = ' '.join(r.output.split())
    assert '5 problem(s)' in out, out
    for needle in ('not found under', 'not readable images (corrupt or truncated)', 'line(s) 6 not among the classes',
                   'line(s) 7 have', 'listed more than once, on line(s) 8, 100', '(lines 4, 5)'):
        assert needle in out, needle
    assert sorted(p.stat().st_mtime_ns for p in csv.parent.rglob('*')) == before   # nothing written

def test_training_lists_every_csv_problem_in_one_error(dataset):
    csv, _ = dataset
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df.loc[0, 'label'], df.loc[1, 'image'] = 'Contempt', ''
    df.to_csv(csv, index=False)
    with pytest.raises(UserError,
                       match=r'2 problems:\n  - empty `image` on line\(s\) 3\n  - `label` on line\(s\) 2 not among'):
        label_dataloaders(csv, classes=['Anger', 'Disgust', 'Fear', 'Happiness', 'Neutral', 'Sadness', 'Surprise'],
                          img_size=32)

def test_an_image_that_breaks_while_training_is_a_user_error(dataset, settings_file):
    "A truncated JPEG passes the start-up header check; decoding it in the first epoch ends the run with exit code 2."
    csv, recipe = dataset
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    _truncated_jpeg(csv.parent/df.image[0], csv.parent/'cut.jpg')
    df.loc[0, 'image'] = 'cut.jpg'
    df.to_csv(csv, index=False)
    r = CliRunner().invoke(app, ['train', str(recipe), '--out', str(csv.parent.parent/'runs')])
    assert r.exit_code == 2, r.output
    assert 'cut.jpg: cannot decode this image' in ' '.join(r.output.split()) and 'Traceback' not in r.output
    r = CliRunner().invoke(app, ['train', str(recipe), 'data.cache=true', '--out', str(csv.parent.parent/'runs2')])
    # the cache decodes everything first
    assert r.exit_code == 2 and 'not readable images' in ' '.join(r.output.split()), r.output
    assert not (csv.parent.parent/'runs2').exists()
