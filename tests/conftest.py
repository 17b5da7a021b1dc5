import pytest, torch
from eac_fastai.data.demo import DemoSpec, make_demo_dataset


@pytest.fixture(scope='session', autouse=True)
def _threads():
    torch.set_num_threads(2)

@pytest.fixture(scope='session')
def demo_csv(tmp_path_factory):
    "A tiny demo dataset: 7 classes × 8 train / 4 valid / 2 test faces of 32 px, 30% noise on train."
    return make_demo_dataset(tmp_path_factory.mktemp('data')/'demo', DemoSpec(n_train=8, n_valid=4, n_test=2, size=32))

@pytest.fixture
def dls(demo_csv):
    from eac_fastai.data.core import label_dataloaders
    return label_dataloaders(demo_csv, img_size=32, bs=16, device='cpu')

@pytest.fixture
def settings_file(tmp_path, monkeypatch):
    "A settings.ini in a temporary folder, selected through EAC_FASTAI_SETTINGS."
    f = tmp_path/'settings.ini'
    f.write_text("[eac_fastai]\ndata = data\nweights = weights\nruns = runs\n")
    monkeypatch.setenv('EAC_FASTAI_SETTINGS', str(f))
    return f
