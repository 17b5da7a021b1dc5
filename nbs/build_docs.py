"""The documentation, built offline: every notebook in nbs/ executed (execnb) and rendered to browsable HTML.

On a machine with Quarto, `nbdev-docs` builds the nbdev site from the same notebooks (`[tool.nbdev]` in
pyproject.toml, nbs/_quarto.yml). Quarto cannot be installed on every machine, so this script renders the executed
notebooks itself: markdown through markdown-it, code and its outputs (text, tables, images, nbdev's `show_doc`), one
page a notebook plus an index, into `--out` (default `_docs/`).

    .venv/bin/python nbs/build_docs.py                 # regenerate nbs/api/*.ipynb, execute everything, write _docs/
    .venv/bin/python nbs/build_docs.py --api-only      # only regenerate the API reference notebooks

`nbs/api/<subpackage>.<module>.ipynb` are generated here from each module's `__all__` and docstrings (nbdev's
`show_doc`), so the reference lists every public name."""
import argparse, html, importlib, json, os, pkgutil, tempfile
from pathlib import Path
from markdown_it import MarkdownIt

NBS = Path(__file__).resolve().parent
_md = MarkdownIt('commonmark').enable('table')

def _nb(cells) -> dict:
    return dict(cells=cells, metadata=dict(kernelspec=dict(display_name='Python 3', language='python', name='python3')),
                nbformat=4, nbformat_minor=5)

def _cell(kind:str, src:str) -> dict:
    c = dict(cell_type=kind, metadata={}, source=src)
    return c if kind == 'markdown' else dict(c, execution_count=None, outputs=[])

def public_modules() -> list:
    "The package's modules with an `__all__`, in name order."
    import eac_fastai
    names = [m.name for m in pkgutil.walk_packages(eac_fastai.__path__, 'eac_fastai.') if '._' not in m.name]
    mods = [importlib.import_module(n) for n in names]
    return sorted((m for m in mods if getattr(m, '__all__', None)), key=lambda m: m.__name__)

def page_name(module) -> str:
    "The API page of `module`: its dotted path below the package (`models.learner`)."
    return module.__name__.removeprefix('eac_fastai.')

def api_notebook(module) -> dict:
    "A notebook documenting every name in `module.__all__` with nbdev's `show_doc`."
    name = module.__name__
    cells = [_cell('markdown', f"# {page_name(module)}\n\n> {(module.__doc__ or '').strip().splitlines()[0]}"),
             _cell('markdown', (module.__doc__ or '').strip()),
             _cell('code', f"#| hide\nfrom nbdev.showdoc import show_doc\nimport {name}")]
    # functions and classes through show_doc; constants shown with their value
    for n in module.__all__:
        if callable(getattr(module, n)): cells.append(_cell('code', f"show_doc({name}.{n})"))
        else: cells += [_cell('markdown', f"### {n}"), _cell('code', f"{name}.{n}")]
    return _nb(cells)

def write_api_notebooks(dest:Path=NBS/'api') -> list[Path]:
    "Write `api/<module>.ipynb` for every public module (and remove pages of modules that are gone)."
    dest.mkdir(exist_ok=True)
    written = []
    for m in public_modules():
        f = dest/f"{page_name(m)}.ipynb"
        f.write_text(json.dumps(api_notebook(m), indent=1, ensure_ascii=False) + '\n'); written.append(f)
    for old in set(dest.glob('*.ipynb')) - set(written): old.unlink()
    return written

def notebooks() -> list[Path]:
    "index first, then the tutorials, then the API reference."
    return [NBS/'index.ipynb', *sorted(p for p in NBS.glob('[0-9]*.ipynb')), *sorted((NBS/'api').glob('*.ipynb'))]

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else v

def _output_html(o:dict) -> str:
    if o.get('output_type') == 'stream': return f"<pre class='out'>{html.escape(_text(o['text']))}</pre>"
    if o.get('output_type') == 'error':
        return f"<pre class='err'>{html.escape(o.get('ename', ''))}: {html.escape(o.get('evalue', ''))}</pre>"
    d = o.get('data', {})
    if 'image/png' in d: return f"<img src='data:image/png;base64,{_text(d['image/png']).strip()}'>"
    if 'text/html' in d: return _text(d['text/html'])
    if 'text/markdown' in d: return _md.render(_text(d['text/markdown']))
    if 'text/plain' in d: return f"<pre class='out'>{html.escape(_text(d['text/plain']))}</pre>"
    return ''

CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\n"
       "pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}pre.out{background:#fff;border-left:3px solid #ddd}"
       "pre.err{color:#b00}\n"
       "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem}"
       "nav a{margin-right:1rem}")

def page(nb:dict, title:str, nav:str) -> str:
    "One executed notebook as a self-contained HTML page (cells tagged `#| hide` left out)."
    parts = []
    for c in nb['cells']:
        src = _text(c['source'])
        if c['cell_type'] == 'markdown': parts.append(_md.render(src)); continue
        if src.startswith('#| hide'): continue
        parts.append(f"<pre><code>{html.escape(src)}</code></pre>"
                     + ''.join(_output_html(o) for o in c.get('outputs', [])))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} · eac-fastai</title>"
            f"<style>{CSS}</style></head>"
            f"<body><nav>{nav}</nav>{''.join(parts)}</body></html>")

def _title(nb:dict, fallback:str) -> str:
    for c in nb['cells']:
        if c['cell_type'] == 'markdown' and _text(c['source']).startswith('# '):
            return _text(c['source']).splitlines()[0][2:]
    return fallback

def build(out:Path) -> list[Path]:
    "Execute every notebook (stopping at the first error, naming it) and write one HTML page each, plus index.html."
    from execnb.shell import CaptureShell
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    with tempfile.TemporaryDirectory() as tmp:
        executed = []
        for nb in notebooks():
            dest = Path(tmp)/nb.relative_to(NBS)
            dest.parent.mkdir(parents=True, exist_ok=True)
            cwd = os.getcwd(); os.chdir(nb.parent)      # as Jupyter runs a notebook: in its own folder
            try: CaptureShell(path=nb.parent).execute(nb, dest, exc_stop=True)
            except Exception as e: raise RuntimeError(f"{nb.relative_to(NBS)} failed: {type(e).__name__}: {e}") from e
            finally: os.chdir(cwd)
            executed.append((nb, json.loads(dest.read_text())))
        links = [(nb.relative_to(NBS).with_suffix('.html').as_posix(), _title(d, nb.stem)) for nb, d in executed]
        for (nb, d), (href, title) in zip(executed, links):
            up = '../' * (len(Path(href).parts) - 1)
            nav = (''.join(f"<a href='{up}{h}'>{html.escape(t)}</a>" for h, t in links if not h.startswith('api/'))
                   + f"<a href='{up}api.html'>API reference</a>")
            f = out/href; f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(page(d, title, nav)); pages.append(f)
        api = ''.join(f"<li><a href='{h}'>{html.escape(t)}</a></li>" for h, t in links if h.startswith('api/'))
        (out/'api.html').write_text("<!doctype html><html><head><meta charset='utf-8'>"
                                    "<title>API reference · eac-fastai</title>"
                                    f"<style>{CSS}</style></head><body><h1>API reference</h1>"
                                    f"<ul>{api}</ul></body></html>")
        pages.append(out/'api.html')
    return pages

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, default=NBS.parent/'_docs')
    p.add_argument('--api-only', action='store_true', help='only regenerate nbs/api/*.ipynb')
    a = p.parse_args()
    write_api_notebooks()
    if a.api_only: return
    pages = build(a.out)
    print(f"{len(pages)} pages → {a.out/'index.html'}")

if __name__ == '__main__': main()
