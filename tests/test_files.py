"Files written safely: a new file is checked before any work, and nothing that exists is replaced unasked."
import pytest
from eac_fastai.errors import UserError
from eac_fastai.files import check_new_file, write_atomic

def test_check_new_file_refuses_what_would_be_lost_and_names_it(tmp_path):
    (tmp_path/'old.csv').write_text('kept')
    with pytest.raises(UserError, match='old.csv: already exists; choose another output or pass --overwrite'):
        check_new_file(tmp_path/'old.csv')
    with pytest.raises(UserError, match='is a folder; give a file name'): check_new_file(tmp_path)
    (tmp_path/'f').write_text('a file')
    with pytest.raises(UserError, match='is a file, not a folder'): check_new_file(tmp_path/'f'/'x.csv')
    assert (tmp_path/'old.csv').read_text() == 'kept' and (tmp_path/'f').read_text() == 'a file'
    assert check_new_file(tmp_path/'old.csv', overwrite=True) == tmp_path/'old.csv'
    assert check_new_file(str(tmp_path/'new'/'x.csv')) == tmp_path/'new'/'x.csv' and not (tmp_path/'new').exists()
    write_atomic(tmp_path/'new'/'x.csv', 'written')
    assert (tmp_path/'new'/'x.csv').read_text() == 'written'
