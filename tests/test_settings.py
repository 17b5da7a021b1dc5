"settings.ini: where data, weights and runs live."
from pathlib import Path
import pytest
from eac_fastai.errors import UserError
from eac_fastai.settings import find_settings, load_settings

def test_env_file_and_relative_paths(settings_file):
    s = load_settings()
    assert s.source == settings_file and s.data == settings_file.parent/'data' and s.runs == settings_file.parent/'runs'
    assert s.data_path('demo/x.csv') == settings_file.parent/'data'/'demo'/'x.csv'
    assert s.weights_path('/abs/w.pth') == Path('/abs/w.pth')

def test_found_in_parents(tmp_path, monkeypatch):
    monkeypatch.delenv('EAC_FASTAI_SETTINGS', raising=False)
    (tmp_path/'settings.ini').write_text('[eac_fastai]\ndata = /srv/faces\n')
    (tmp_path/'a'/'b').mkdir(parents=True)
    s = load_settings(tmp_path/'a'/'b')
    assert s.data == Path('/srv/faces') and s.weights == tmp_path/'weights'
    (tmp_path/'a'/'settings.ini').write_text('[other]\nx = 1\n')                 # other tools' settings.ini are skipped
    assert find_settings(tmp_path/'a'/'b') == tmp_path/'settings.ini'

def test_repository_settings_is_read(monkeypatch):
    monkeypatch.delenv('EAC_FASTAI_SETTINGS', raising=False)
    repo = Path(__file__).parent.parent.resolve()
    s = load_settings(repo/'recipes')
    assert s.source == repo/'settings.ini' and s.runs == repo/'runs' and s.weights == repo/'weights'

def test_bad_settings(tmp_path, monkeypatch):
    f = tmp_path/'settings.ini'
    monkeypatch.setenv('EAC_FASTAI_SETTINGS', str(f))
    with pytest.raises(UserError, match='no such file'): load_settings()
    f.write_text('[eac_fastai]\ndata = d\ndatta = e\n')
    with pytest.raises(UserError, match='unknown key.*datta'): load_settings()
    f.write_text('[eac_fastai\n')
    with pytest.raises(UserError, match='not a valid ini'): load_settings()
    f.write_text('[eac_fastai]\ndata = /srv/100%faces\n')
    assert load_settings().data == Path('/srv/100%faces')                       # no interpolation
    f.write_bytes(b'[eac_fastai]\ndata = \xff\xfe\n')
    with pytest.raises(UserError, match='cannot read the settings file'): load_settings()
