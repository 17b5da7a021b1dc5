"report, label-issues and predict on a finished demo run, through the CLI; the report rendered in headless Chromium."
import json, os, re, shutil, subprocess
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from typer.testing import CliRunner
from eac_fastai.cli import app

TINY = ("method: eac\nseed: 0\n"
        "data: {demo: {n_train: 6, n_valid: 3, n_test: 2, size: 32}, img_size: 32, bs: 16, cache: true}\n"
        "train: {epochs: 2, lr: 1.0e-3, device: cpu}\n")

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A finished 2-epoch EAC run on demo data, with settings.ini pointing at its folder (for the whole module)."
    tmp = tmp_path_factory.mktemp('report')
    (tmp/'settings.ini').write_text("[eac_fastai]\ndata = data\nweights = weights\nruns = runs\n")
    (tmp/'tiny.yaml').write_text(TINY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('EAC_FASTAI_SETTINGS', str(tmp/'settings.ini'))
        r = CliRunner().invoke(app, ['train', str(tmp/'tiny.yaml')])
        assert r.exit_code == 0, r.output
        (run,) = (tmp/'runs').iterdir()
        yield run

def _chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        if os.environ.get('CI'):
            pytest.fail("chromium is not installed: README's test command installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe

CHECK = ("<script>addEventListener('load', () => document.body.setAttribute('data-loaded', "
         "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length + '/' + "
         "document.images.length))</script>")

def test_report_renders_with_all_images_in_chromium(run, tmp_path):
    r = CliRunner().invoke(app, ['report', str(run)])
    assert r.exit_code == 0, r.output
    page = (run/'report.html').read_text()
    for section in ('Training curves', 'Confusion matrix', 'Attention maps', 't-SNE', 'Label issues', 'Recipe',
                    'memorisation'):
        assert section in page, section
    assert 'src="http' not in page and '<link' not in page                              # self-contained
    probe = tmp_path/'probe.html'
    probe.write_text(page.replace('</body>', CHECK + '</body>'))
    out = subprocess.run([_chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                          '--no-first-run', '--disable-background-networking', '--disable-component-update',
                          '--disable-sync', f'--user-data-dir={tmp_path/"profile"}', '--virtual-time-budget=10000',
                          '--dump-dom', probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', out.stdout)
    assert loaded, out.stderr[-2000:]
    assert int(loaded[1]) == int(loaded[2]) == 4          # curves, confusion, attention, t-SNE: every figure decoded
    r = CliRunner().invoke(app, ['report', str(run)])
    assert r.exit_code == 2 and 'already exists' in r.output                              # nothing overwritten

def test_label_issues_csv(run):
    r = CliRunner().invoke(app, ['label-issues', str(run)])
    assert r.exit_code == 0, r.output
    assert re.search(r'precision \d\.\d{3} \(\d+/\d+\), recall \d\.\d{3} \(\d+/\d+ flipped labels\)', r.output)
    f = pd.read_csv(run/'label_issues.csv')
    assert list(f.columns) == ['image', 'is_label_issue', 'label_quality', 'given_label', 'predicted_label',
                               'clean_label', 'is_noisy']
    assert len(f) == 42 and f.is_noisy.sum() == (f.given_label != f.clean_label).sum() > 0    # every training image
    issues = f[f.is_label_issue]
    assert issues.label_quality.is_monotonic_increasing and (f.index[f.is_label_issue] < len(issues)).all()
    r = CliRunner().invoke(app, ['label-issues', str(run), '--by', 'nope', '-o', str(run/'x.csv')])
    assert r.exit_code == 2 and 'confident' in r.output

def test_predict_run_dir_and_export_agree_on_any_image_mode(run, tmp_path):
    src = sorted(run.parent.parent.glob('data/demo-*/images/test/*.png'))[:3]
    folder = tmp_path/'imgs'; (folder/'sub').mkdir(parents=True)
    rgb = np.asarray(Image.open(src[0]).convert('RGB'))
    Image.fromarray(rgb).save(folder/'a_rgb.png')
    # opaque alpha: same image
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(folder/'b_rgba.png')
    Image.open(src[1]).convert('L').save(folder/'sub'/'c_gray.png')
    Image.fromarray(np.asarray(Image.open(src[2]).convert('L')).astype(np.uint16)*257).save(folder/'d_16bit.png')
    r = CliRunner().invoke(app, ['predict', str(run), str(folder), '-o', str(tmp_path/'p.csv')])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path/'p.csv')
    # sorted paths, sub/ last
    assert [Path(i).name for i in p.image] == ['a_rgb.png', 'b_rgba.png', 'd_16bit.png', 'c_gray.png']
    probs = p.filter(like='prob_')
    assert probs.shape[1] == 7 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(probs.iloc[0], probs.iloc[1], atol=1e-6)                                # RGBA read as its RGB
    assert (p.pred == probs.idxmax(axis=1).str.removeprefix('prob_')).all()
    r = CliRunner().invoke(app, ['predict', str(run/'export.pkl'), str(folder), '-o', str(tmp_path/'e.csv')])
    # a pickle runs code: opt in
    assert r.exit_code == 2 and '--trust-pickle' in r.output and not (tmp_path/'e.csv').exists()
    r = CliRunner().invoke(app, ['predict', str(run/'export.pkl'), str(folder), '-o', str(tmp_path/'e.csv'),
                                 '--trust-pickle'])
    assert r.exit_code == 0, r.output
    e = pd.read_csv(tmp_path/'e.csv')
    # the export predicts the same
    assert np.allclose(e.filter(like='prob_'), probs, atol=1e-5)
    r = CliRunner().invoke(app, ['predict', str(run), str(folder), '-o', str(tmp_path/'p.csv')])
    assert r.exit_code == 2 and 'already exists' in r.output
    (folder/'broken.png').write_bytes(b'not a png')
    r = CliRunner().invoke(app, ['predict', str(run), str(folder)])
    assert r.exit_code == 2 and 'broken.png' in r.output

def test_exported_learner_has_no_training_callbacks(run):
    from fastai.learner import load_learner
    from eac_fastai.methods.base import AugmentCallback
    learn = load_learner(run/'export.pkl')
    assert not [cb for cb in learn.cbs if isinstance(cb, AugmentCallback)]
    img = sorted(run.parent.parent.glob('data/demo-*/images/test/*.png'))[0]
    label, _, probs = learn.predict(str(img))                                                  # a path, as in fastai
    assert label in learn.dls.vocab and float(probs.sum()) == pytest.approx(1, abs=1e-5)

def test_bad_run_folder_exit_2(tmp_path):
    for args in (['report', str(tmp_path)], ['label-issues', str(tmp_path)],
                 ['predict', str(tmp_path/'none'), str(tmp_path)]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)

def test_sweep_report_plots_the_ablation(tmp_path):
    "A sweep folder's report: last-5 accuracy against each swept value, one line per cell (supplementary Fig. 2 and 3)."
    folder = tmp_path/'sweep'; folder.mkdir()
    rows = [dict(cell=f'm.yaml#noise{n}', **{'eac.lam': lam, 'augment.erase.ratio': '[0.3, 3.3]'}, run=f'r{n}{lam}',
                 last5_mean_accuracy=0.5 + lam/100, final_accuracy=0.5, best_accuracy=0.6, best_epoch=3, epochs=5)
            for n in (10, 30) for lam in (1, 3, 5)]
    pd.DataFrame(rows).to_csv(folder/'sweep.csv', index=False)
    r = CliRunner().invoke(app, ['report', str(folder), '-o', str(tmp_path/'s.html')])
    assert r.exit_code == 0, r.output
    page = (tmp_path/'s.html').read_text()
    assert page.count('<img') == 1 and 'Ablation' in page and page.count('<tr>') == 1 + len(rows)
    from eac_fastai.analysis.figures import ablation_figure
    fig = ablation_figure(pd.DataFrame(rows))
    ax = fig.axes[0]
    # one line per noise level
    assert ax.get_xlabel() == 'eac.lam' and len(ax.lines) == 2
    assert list(ax.lines[0].get_xdata()) == [1, 3, 5] and ax.lines[0].get_ydata()[-1] == pytest.approx(55)

def test_onnx_export_runs_in_onnxruntime_as_the_run_does(run, tmp_path):
    "On real face photos (scikit-image's astronaut and an LFW face) and demo faces; batches of 2, 2 and 1."
    import onnx
    from skimage import data
    imgs = tmp_path/'imgs'; imgs.mkdir()
    Image.fromarray(data.astronaut()).save(imgs/'astronaut.png')
    Image.fromarray((data.lfw_subset()[0]*255).astype(np.uint8)).save(imgs/'lfw.png')
    for f in sorted(run.parent.parent.glob('data/demo-*/images/test/*.png'))[:3]: shutil.copy(f, imgs/f.name)
    r = CliRunner().invoke(app, ['export', str(run), '-o', str(tmp_path/'m.onnx')])
    assert r.exit_code == 0, r.output
    meta = {p.key: p.value for p in onnx.load(tmp_path/'m.onnx').metadata_props}
    classes = json.loads((run/'metrics.json').read_text())['classes']
    assert json.loads(meta['classes']) == classes and meta['img_size'] == '32' and meta['method'] == 'eac'
    for source, out in ((run, 'torch.csv'), (tmp_path/'m.onnx', 'onnx.csv')):
        r = CliRunner().invoke(app, ['predict', str(source), str(imgs), '--bs', '2', '-o', str(tmp_path/out)])
        assert r.exit_code == 0, r.output
    t, o = pd.read_csv(tmp_path/'torch.csv'), pd.read_csv(tmp_path/'onnx.csv')
    assert len(t) == 5 and (t.image == o.image).all() and (t.pred == o.pred).all()
    assert np.abs(t.filter(like='prob_').to_numpy() - o.filter(like='prob_').to_numpy()).max() <= 1e-4
    # refused with a message, nothing written
    (tmp_path/'fake.onnx').write_bytes(b'not onnx')
    for args, words in [(['predict', str(tmp_path/'fake.onnx'), str(imgs)], 'not an ONNX model'),
                        (['export', str(run), '--format', 'tflite'], "'tflite' is not one of"),
                        (['export', str(run), '-o', str(tmp_path/'m.onnx')], 'already exists')]:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and words in r.output, r.output
    assert not (run/'model.onnx').exists()

def test_evaluate_and_flip_tta(run, tmp_path):
    "evaluate reproduces the run's final accuracy; flip TTA averages each image's and its mirror's probabilities."
    import torch
    from eac_fastai.analysis.outputs import outputs
    from eac_fastai.training.runs import load_run
    metrics = json.loads((run/'metrics.json').read_text())
    r = CliRunner().invoke(app, ['evaluate', str(run), '-o', str(tmp_path/'e.csv')])
    assert r.exit_code == 0 and f"accuracy {metrics['final_accuracy']:.4f} on 21 valid images" in r.output, r.output
    e = pd.read_csv(tmp_path/'e.csv')
    assert len(e) == 21 and (e.pred == e.label).mean() == pytest.approx(metrics['final_accuracy'])
    r = CliRunner().invoke(app, ['evaluate', str(run), '--split', 'test', '--tta', 'flip'])
    assert r.exit_code == 0 and 'on 14 test images' in r.output and 'tta flip' in r.output, r.output
    _, learn = load_run(run)
    xb = next(iter(learn.dls.valid))[0]
    plain, flip = (outputs(learn.model, [(xb,)], tta)[0] for tta in (None, 'flip'))
    mirrored = outputs(learn.model, [(xb.flip(-1),)])[0]
    assert torch.allclose(flip, (plain + mirrored)/2, atol=1e-6) and not torch.allclose(flip, plain, atol=1e-4)
    # predict with TTA: the run and its ONNX export agree
    imgs = sorted(run.parent.parent.glob('data/demo-*/images/test/*.png'))[:4]
    assert CliRunner().invoke(app, ['export', str(run), '-o', str(tmp_path/'m.onnx')]).exit_code == 0
    for source, out in ((run, 't.csv'), (tmp_path/'m.onnx', 'o.csv')):
        r = CliRunner().invoke(app, ['predict', str(source), *map(str, imgs), '--tta', 'flip', '-o', str(tmp_path/out)])
        assert r.exit_code == 0, r.output
    t, o = pd.read_csv(tmp_path/'t.csv'), pd.read_csv(tmp_path/'o.csv')
    assert np.abs(t.filter(like='prob_').to_numpy() - o.filter(like='prob_').to_numpy()).max() <= 1e-4
    for args, words in [(['evaluate', str(run), '--tta', 'rotate'], "'rotate' is not one of"),
                        (['evaluate', str(run), '--split', 'train'], 'choose valid or test'),
                        (['predict', str(run), str(imgs[0]), '--tta', 'five-crop'], "'five-crop' is not one of")]:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and words in r.output, r.output
