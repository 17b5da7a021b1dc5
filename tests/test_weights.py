"Local pretrained weights: torchvision and RUL layouts, clear errors, no code execution."
import pickle
import pytest, torch, torchvision
from eac_fastai.errors import UserError
from eac_fastai.learner import eac_learner
from eac_fastai.weights import read_state_dict

def body_matches(learn, sd):
    ref = torchvision.models.resnet18(); ref.load_state_dict(sd)
    ours, theirs = learn.model[0].state_dict().values(), torch.nn.Sequential(*list(ref.children())[:-2]).state_dict().values()
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
    with pytest.raises(UserError, match='r34.pth: does not fit the ResNet backbone of model.arch: unexpected keys: layer1.2'):
        eac_learner(dls, 'resnet18', weights=tmp_path/'r34.pth')
    sd = torchvision.models.resnet18().state_dict(); sd['conv1.weight'] = torch.zeros(64, 1, 7, 7)
    torch.save(sd, tmp_path/'shape.pth')
    with pytest.raises(UserError, match=r'shape mismatches: conv1.weight \(64, 1, 7, 7\) vs \(64, 3, 7, 7\)'):
        eac_learner(dls, 'resnet18', weights=tmp_path/'shape.pth')
    ijba = {f'module.{k}': v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith('fc')}
    ijba['module.feature.weight'] = torch.zeros(256, 512)             # SCN/RAN's ijba_res18_naive layout
    torch.save({'state_dict': ijba}, tmp_path/'ijba.pth')
    with pytest.raises(UserError, match='unexpected keys: feature.weight'): eac_learner(dls, 'resnet18', weights=tmp_path/'ijba.pth')

class Evil:
    def __reduce__(self): return (print, ('pwned',))

def test_pickled_code_and_junk_refused(tmp_path, capsys):
    torch.save({'state_dict': Evil()}, tmp_path/'evil.pth')
    with pytest.raises(UserError, match='refused to load'): read_state_dict(tmp_path/'evil.pth')
    assert 'pwned' not in capsys.readouterr().out
    with open(tmp_path/'plain.pkl', 'wb') as f: pickle.dump(Evil(), f)
    with pytest.raises(UserError, match='refused to load|not a PyTorch checkpoint'): read_state_dict(tmp_path/'plain.pkl')
    assert 'pwned' not in capsys.readouterr().out
    (tmp_path/'text.pth').write_text('hello')
    with pytest.raises(UserError, match='not a PyTorch checkpoint'): read_state_dict(tmp_path/'text.pth')
    torch.save([1, 2], tmp_path/'list.pth')
    with pytest.raises(UserError, match='expected a state_dict'): read_state_dict(tmp_path/'list.pth')
    with pytest.raises(UserError, match='not found'): read_state_dict(tmp_path/'none.pth')
