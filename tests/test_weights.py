"Local pretrained weights: torchvision, RUL and VGGFace2 layouts, clear errors, no code execution."
import os, pickle
import numpy as np
import pytest, torch, torchvision
from fastai.vision.learner import create_body
from eac_fastai.models.archs import resnet50_vggface2
from eac_fastai.errors import UserError
from eac_fastai.models.learner import eac_learner
from eac_fastai.models.weights import (checkpoint_format, is_torchvision_weights, load_backbone_weights,
                                       read_state_dict, torchvision_weights, weights_cache_file)

def body_matches(learn, sd):
    ref = torchvision.models.resnet18(); ref.load_state_dict(sd)
    ours, theirs = (learn.model[0].state_dict().values(),
                    torch.nn.Sequential(*list(ref.children())[:-2]).state_dict().values())
    return len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs))

@pytest.mark.parametrize('layout', ['torchvision', 'rul', 'module_prefix'])
def test_layouts_load_into_body(dls, tmp_path, layout):
    torch.manual_seed(1)
    sd = torchvision.models.resnet18().state_dict()                    # a 1000-way fc, as in resnet18_msceleb.pth
    obj = {'torchvision': sd, 'rul': {'state_dict': sd, 'epoch': 3},
           'module_prefix': {f'module.{k}': v for k, v in sd.items()}}[layout]
    f = tmp_path/'w.pth'; torch.save(obj, f)
    learn = eac_learner(dls, 'resnet18', weights=f)
    assert body_matches(learn, sd)
    assert all(p.requires_grad for p in learn.model.parameters())       # body unfrozen
    assert learn.model[1][-1].out_features == 7

def test_fastai_checkpoint_of_a_run(dls, tmp_path):
    "A run's models/last.pth (learn.save with the optimizer) initialises a new learner's body; its head is dropped."
    torch.manual_seed(2)
    old = eac_learner(dls, 'resnet18', path=tmp_path)
    old.fit(1, 1e-3)
    old.save('last', with_opt=True)
    new = eac_learner(dls, 'resnet18', weights=tmp_path/'models'/'last.pth')
    for a, b in zip(old.model[0].state_dict().values(), new.model[0].state_dict().values()): assert torch.equal(a, b)
    with pytest.raises(UserError, match=r'missing keys: 0\.4\.2\.conv1'):
        eac_learner(dls, 'resnet34', weights=tmp_path/'models'/'last.pth')

def test_missing_bn_counters_are_fine(dls, tmp_path):
    sd = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.endswith('num_batches_tracked')}
    torch.save(sd, tmp_path/'w.pth')
    learn = eac_learner(dls, 'resnet18', weights=tmp_path/'w.pth')
    full = torchvision.models.resnet18().state_dict(); full.update(sd)
    assert body_matches(learn, full)

def test_wrong_arch_or_shapes_fail_clearly(dls, tmp_path):
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path/'r34.pth')
    with pytest.raises(UserError,
                       match='r34.pth: does not fit the ResNet backbone of model.arch: unexpected keys: layer1.2'):
        eac_learner(dls, 'resnet18', weights=tmp_path/'r34.pth')
    sd = torchvision.models.resnet18().state_dict(); sd['conv1.weight'] = torch.zeros(64, 1, 7, 7)
    torch.save(sd, tmp_path/'shape.pth')
    with pytest.raises(UserError, match=r'shape mismatches: conv1.weight \(64, 1, 7, 7\) vs \(64, 3, 7, 7\)'):
        eac_learner(dls, 'resnet18', weights=tmp_path/'shape.pth')
    ijba = {f'module.{k}': v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith('fc')}
    ijba['module.feature.weight'] = torch.zeros(256, 512)             # SCN/RAN's ijba_res18_naive layout
    torch.save({'state_dict': ijba}, tmp_path/'ijba.pth')
    with pytest.raises(UserError, match='unexpected keys: feature.weight'):
        eac_learner(dls, 'resnet18', weights=tmp_path/'ijba.pth')

class Evil:
    def __reduce__(self): return (print, ('pwned',))

def test_pickled_code_and_junk_refused(tmp_path, capsys):
    torch.save({'state_dict': Evil()}, tmp_path/'evil.pth')
    with pytest.raises(UserError, match='refused to load'): read_state_dict(tmp_path/'evil.pth')
    assert 'pwned' not in capsys.readouterr().out
    with open(tmp_path/'plain.pkl', 'wb') as f: pickle.dump(Evil(), f)
    with pytest.raises(UserError, match='refused to load|not a PyTorch checkpoint'):
        read_state_dict(tmp_path/'plain.pkl')
    assert 'pwned' not in capsys.readouterr().out
    (tmp_path/'text.pth').write_text('hello')
    with pytest.raises(UserError, match='not a PyTorch checkpoint'): read_state_dict(tmp_path/'text.pth')
    torch.save([1, 2], tmp_path/'list.pth')
    with pytest.raises(UserError, match='expected a state_dict'): read_state_dict(tmp_path/'list.pth')
    with pytest.raises(UserError, match='not found'): read_state_dict(tmp_path/'none.pth')

# VGGFace2's resnet50_ft_weight.pkl: a latin1 pickle of torchvision-style names → numpy arrays, for resnet50_vggface2

@pytest.fixture(scope='module')
def vggface2_pkl(tmp_path_factory):
    """A fake `resnet50_ft_weight.pkl`: random resnet50_vggface2 weights (fc 2048→8631), no BN counters,
    pickle protocol 2."""
    torch.manual_seed(3)
    sd = {k: v.numpy() for k, v in resnet50_vggface2().state_dict().items() if not k.endswith('num_batches_tracked')}
    f = tmp_path_factory.mktemp('vggface2')/'resnet50_ft_weight.pkl'
    with open(f, 'wb') as fh: pickle.dump(sd, fh, protocol=2)
    yield f, sd
    f.unlink()                                                         # 250 MB: not left in pytest's kept temp folders

def test_vggface2_pickle_loads_into_its_body(vggface2_pkl):
    f, sd = vggface2_pkl
    assert checkpoint_format(f) == 'pickle'
    # strict, as the official EAC: BN counters are filled
    ref = resnet50_vggface2(); ref.load_state_dict(read_state_dict(f))
    body = create_body(resnet50_vggface2(), pretrained=False)
    assert load_backbone_weights(body, resnet50_vggface2(), f) == ['fc.weight', 'fc.bias']
    ours, theirs = body.state_dict(), torch.nn.Sequential(*list(ref.children())[:-2]).state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(body[4][0].conv1.weight, torch.from_numpy(sd['layer1.0.conv1.weight']))

def test_vggface2_names_also_fit_torchvision_resnet50(vggface2_pkl):
    "The trap: same names and shapes, so torchvision's resnet50 loads the pickle, but it is another network."
    f, _ = vggface2_pkl
    caffe, tv = (create_body(resnet50_vggface2(), pretrained=False),
                 create_body(torchvision.models.resnet50(), pretrained=False, cut=-2))
    assert load_backbone_weights(tv, torchvision.models.resnet50(), f) == ['fc.weight', 'fc.bias']     # no error
    caffe.load_state_dict(tv.state_dict())                                                            # the same tensors
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(): a, b = caffe.eval()(x), tv.eval()(x)
    assert a.shape == b.shape and not torch.allclose(a, b, atol=1e-3)

class _Py2Pickler(pickle._Pickler):
    "Writes bytes as Python 2 `str` (BINSTRING), as pickles made by Python 2 do; reading them needs encoding='latin1'."
    dispatch = pickle._Pickler.dispatch.copy()
    def save_py2_str(self, obj):
        self.write(pickle.BINSTRING + len(obj).to_bytes(4, 'little') + obj); self.memoize(obj)
    dispatch[bytes] = save_py2_str

def test_python2_pickle_of_arrays(tmp_path):
    sd = {'conv1.weight': np.random.randn(4, 3, 7, 7).astype(np.float32),
          'bn1.running_var': np.random.rand(4).astype(np.float32)}
    with open(tmp_path/'py2.pkl', 'wb') as f: _Py2Pickler(f, protocol=2).dump(sd)
    assert pickle.BINSTRING in (tmp_path/'py2.pkl').read_bytes()
    out = read_state_dict(tmp_path/'py2.pkl')
    assert list(out) == list(sd) and all(torch.equal(out[k], torch.from_numpy(v)) for k, v in sd.items())

class _Shell:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))

@pytest.mark.parametrize('name', ['resnet50_ft_weight.pkl', 'renamed.pth'])
def test_pickled_shell_command_is_not_run(tmp_path, name):
    marker = tmp_path/'pwned'
    with open(tmp_path/name, 'wb') as f: pickle.dump({'conv1.weight': np.zeros(2), 'x': _Shell(marker)}, f, protocol=2)
    with pytest.raises(UserError, match=r'refused to load: it names (posix|os)\.system'): read_state_dict(tmp_path/name)
    with pytest.raises(UserError, match='refused to load'):
        load_backbone_weights(create_body(resnet50_vggface2(), pretrained=False), resnet50_vggface2(), tmp_path/name)
    assert not marker.exists()

def test_vggface2_pickle_errors_name_keys(tmp_path):
    sd = {k: v.numpy() for k, v in resnet50_vggface2().state_dict().items() if k.startswith(('conv1.', 'bn1.'))}
    sd['conv1.weight'], sd['extra.weight'] = np.zeros((64, 3, 3, 3), np.float32), np.zeros(3, np.float32)
    with open(tmp_path/'part.pkl', 'wb') as f: pickle.dump(sd, f, protocol=2)
    with pytest.raises(UserError, match=r'part.pkl: does not fit the ResNet backbone of model.arch: '
                       r'missing keys: layer1\.0\.conv1\.weight, .* \(260\); unexpected keys: extra\.weight \(1\); '
                       r'shape mismatches: conv1\.weight \(64, 3, 3, 3\) vs \(64, 3, 7, 7\) \(1\)'):
        load_backbone_weights(create_body(resnet50_vggface2(), pretrained=False), resnet50_vggface2(),
                              tmp_path/'part.pkl')

def test_pickles_of_other_things_fail_clearly(tmp_path):
    for name, obj in (('list.pkl', [np.zeros(2)]), ('text.pkl', {'conv1.weight': 'abc'}), ('empty.pkl', {})):
        with open(tmp_path/name, 'wb') as f: pickle.dump(obj, f, protocol=2)
        with pytest.raises(UserError, match=f'{name}: expected a state_dict'): read_state_dict(tmp_path/name)
    (tmp_path/'junk.pkl').write_bytes(b'\x00\x01junk')
    with pytest.raises(UserError, match='junk.pkl: neither a PyTorch checkpoint .* nor a pickle of numpy arrays'):
        read_state_dict(tmp_path/'junk.pkl')
    (tmp_path/'cut.pkl').write_bytes(b'\x80\x02}q\x00(X')
    with pytest.raises(UserError, match='cut.pkl: not a readable pickle'): read_state_dict(tmp_path/'cut.pkl')

# torchvision's ImageNet weights through its weights API and torch's cache, offline

@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    "An empty torch cache (TORCH_HOME) on a machine without a network: downloads go to a closed local port."
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))
    for v in ('https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'): monkeypatch.setenv(v, 'http://127.0.0.1:9')
    for v in ('no_proxy', 'NO_PROXY'): monkeypatch.delenv(v, raising=False)
    return tmp_path/'torch'

def test_torchvision_weights_by_name(torch_home):
    w = torchvision_weights('resnet50', 'imagenet')
    assert w is torchvision.models.ResNet50_Weights.DEFAULT is torchvision_weights('resnet50', 'IMAGENET1K_V2')
    assert weights_cache_file(w) == torch_home/'hub'/'checkpoints'/'resnet50-11ad3fa6.pth'
    assert torchvision_weights('mobilenet_v2', 'IMAGENET1K_V1').url.endswith('mobilenet_v2-b0353104.pth')
    assert is_torchvision_weights('imagenet') and is_torchvision_weights('IMAGENET1K_V1')
    assert not any(map(is_torchvision_weights, ['resnet18_msceleb.pth', 'weights/IMAGENET1K_V1', 'Imagenet', None]))
    with pytest.raises(ValueError, match="IMAGENET1K_V2 is not one of torchvision's resnet18 weights; choose imagenet"):
        torchvision_weights('resnet18', 'IMAGENET1K_V2')
    with pytest.raises(ValueError, match='no pretrained weights for resnet18_cifar; .* resnet18, resnet34'):
        torchvision_weights('resnet18_cifar', 'imagenet')

def test_imagenet_weights_from_the_torch_cache(dls, torch_home):
    "A state dict placed where torchvision expects it is what the body starts from, with nothing downloaded."
    torch.manual_seed(3)
    ref = torchvision.models.mobilenet_v2()
    (torch_home/'hub'/'checkpoints').mkdir(parents=True)
    torch.save(ref.state_dict(), torch_home/'hub'/'checkpoints'/'mobilenet_v2-7ebf99e0.pth')   # IMAGENET1K_V2's file
    learn = eac_learner(dls, 'mobilenet_v2', weights='imagenet')
    assert all(torch.equal(a, b) for a, b in zip(learn.model[0].state_dict().values(),
                                                 ref.features.state_dict().values()))
    with pytest.raises(UserError, match=r'IMAGENET1K_V1 is not in torch.s cache and could not be downloaded'):
        eac_learner(dls, 'mobilenet_v2', weights='IMAGENET1K_V1')         # another file of the same arch

def test_imagenet_weights_through_the_cli(demo_csv, torch_home, settings_file, tmp_path):
    "train model.weights=imagenet: missing offline → exit 2 naming the exact path, nothing written; placed → used."
    from typer.testing import CliRunner
    from eac_fastai.cli import app
    recipe = tmp_path/'r.yaml'
    recipe.write_text(f"method: baseline\ndata: {{csv: {demo_csv}, img_size: 32, bs: 16}}\n"
                      "model: {arch: resnet18, weights: imagenet}\ntrain: {epochs: 1, lr: 1.0e-9, device: cpu}\n")
    file = torch_home/'hub'/'checkpoints'/'resnet18-f37072fd.pth'
    r = CliRunner().invoke(app, ['validate', str(recipe)])
    assert r.exit_code == 0 and 'first run downloads' in r.output and file.name in r.output, r.output
    r = CliRunner().invoke(app, ['train', str(recipe), '--out', str(tmp_path/'runs')])
    assert r.exit_code == 2 and str(file) in r.output.replace('\n', ''), r.output
    assert 'could not be downloaded' in r.output and not (tmp_path/'runs').exists()
    torch.manual_seed(4)
    sd = torchvision.models.resnet18().state_dict()
    file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, file)
    r = CliRunner().invoke(app, ['train', str(recipe), '--out', str(tmp_path/'runs')])
    assert r.exit_code == 0, r.output
    best = read_state_dict(next((tmp_path/'runs').glob('*/models/best.pth')))
    assert torch.allclose(best['0.0.weight'], sd['conv1.weight'], atol=1e-6)      # conv1 after 1 epoch at lr 1e-9
    assert not torch.allclose(best['0.0.weight'], torchvision.models.resnet18().conv1.weight, atol=1e-3)
    file.write_bytes(b'PK\x03\x04 cut short')
    r = CliRunner().invoke(app, ['train', str(recipe), '--out', str(tmp_path/'runs2')])
    assert r.exit_code == 2 and 'delete it to download it again' in r.output and not (tmp_path/'runs2').exists()
