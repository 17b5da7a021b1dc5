"""The notebooks execute and the offline documentation builds: one page per tutorial and per module, opened in
headless Chromium."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

NBS = Path(__file__).parent.parent/'nbs'
sys.path.insert(0, str(NBS))
import build_docs

def test_api_notebooks_are_current_and_list_every_public_name():
    for m in build_docs.public_modules():
        f = NBS/'api'/f"{build_docs.page_name(m)}.ipynb"
        assert f.is_file() and json.loads(f.read_text()) == build_docs.api_notebook(m), \
            f"{f} is stale: run `.venv/bin/python nbs/build_docs.py --api-only`"

def _chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None and os.environ.get('CI'):
        pytest.fail("chromium is not installed (README's test command installs it)")
    if exe is None: pytest.skip("chromium not installed")
    return exe

def test_notebooks_execute_and_the_docs_build_offline(tmp_path):
    pages = build_docs.build(tmp_path/'docs')                       # executes every notebook; a failing one is named
    names = {p.relative_to(tmp_path/'docs').as_posix() for p in pages}
    tutorials = {p.with_suffix('.html').name for p in NBS.glob('[0-9]*.ipynb')}
    assert {'index.html', 'api.html'} | tutorials <= names and len(tutorials) >= 5
    for m in build_docs.public_modules():
        text = (tmp_path/'docs'/'api'/f"{build_docs.page_name(m)}.html").read_text()
        missing = [n for n in m.__all__ if n not in text]
        assert not missing, f"{m.__name__}: {missing} not on its page"
    exe = _chromium()
    for page, needles in [('02_learner_api.html', ['The Learner API', 'EACCallback']),
                          ('api/models.learner.html', ['eac_learner', 'API reference'])]:
        r = subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--dump-dom',
                            (tmp_path/'docs'/page).as_uri()],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and all(n in r.stdout for n in needles), r.stderr[-2000:]
    # the attention maps
    assert (tmp_path/'docs'/'02_learner_api.html').read_text().count("src='data:image/png;base64,") >= 1
