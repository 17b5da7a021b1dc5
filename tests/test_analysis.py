"Attention maps, training outputs, memorisation per epoch and the narrow ResNet, on tiny demo data."
import numpy as np, pandas as pd, pytest, torch
from eac_fastai.analysis.outputs import attention_maps, outputs, training_dl, training_outputs
from eac_fastai.methods.cam import class_activation_maps
from eac_fastai.models.learner import eac_learner
from eac_fastai.analysis.memorisation import MemorisationCallback, flipped_rows

@pytest.mark.parametrize('arch,width,most', [('resnet10_narrow', 128, 400_000), ('resnet10_tiny', 64, 100_000)])
def test_the_narrow_resnets_give_a_4x4_cam_at_32px(dls, arch, width, most):
    learn = eac_learner(dls, arch, method='eac', lam=1.)
    assert learn.model[0](torch.zeros(2, 3, 32, 32)).shape == (2, width, 4, 4)
    assert sum(p.numel() for p in learn.model.parameters()) < most
    learn.fit(1, 1e-3)                                                 # EAC's CAMs work on it

@pytest.mark.parametrize('method', ['eac', 'rul'])
def test_attention_maps_decompose_the_logit(dls, method):
    """map summed over positions = logit(features) − logit(zero features): the CAM/HW for a linear head, exact for RUL's
    test head."""
    learn = eac_learner(dls, 'resnet18', method=method)
    x = dls.valid.one_batch()[0]
    maps, k = attention_maps(learn.model, x)
    body, head = learn.model[0].eval(), learn.model[1].eval()
    with torch.no_grad():
        f = body(x)
        logits, zero = head(f), head(torch.zeros_like(f))
    assert torch.equal(k, logits.argmax(1))
    assert torch.allclose(maps.sum((1, 2)), (logits - zero).gather(1, k[:, None])[:, 0], atol=1e-4)
    if method == 'eac':
        cam = class_activation_maps(f, learn.model[1][-1].weight)[torch.arange(len(k)), k]
        assert torch.allclose(maps, cam/f[0, 0].numel(), atol=1e-5)
    assert learn.model.training                                        # the caller's mode is restored

def test_training_outputs_follow_the_csv_order(dls):
    learn = eac_learner(dls, 'resnet18', method='baseline')
    out = training_outputs(learn)
    items = dls.train_ds.items
    assert out.probs.shape == (len(items), len(dls.vocab)) and np.allclose(out.probs.sum(1), 1, atol=1e-5)
    assert out.features.shape == (len(items), 512)
    assert ([dls.vocab[i] for i in out.labels] == items.label.tolist() and
            [dls.vocab[i] for i in out.clean] == items.clean_label.tolist())
    rows = flipped_rows(items)
    assert len(rows) and (items.label.iloc[rows] != items.clean_label.iloc[rows]).all()
    probs, _ = outputs(learn.model, training_dl(dls, rows))
    assert np.allclose(probs.numpy(), out.probs[rows], atol=1e-5)

def test_memorisation_logged_per_epoch_from_the_final_model(dls):
    learn = eac_learner(dls, 'resnet18', method='eac', lam=1.)
    learn.fit(2, 1e-3, cbs=MemorisationCallback())
    names = list(learn.recorder.metric_names)
    assert 'flipped_as_given' in names and 'flipped_as_clean' in names
    given, clean = (learn.recorder.values[-1][names.index(n) - 1] for n in ('flipped_as_given', 'flipped_as_clean'))
    items = dls.train_ds.items
    rows = flipped_rows(items)
    pred = np.array(dls.vocab)[outputs(learn.model, training_dl(dls, rows))[0].argmax(1).numpy()]
    assert given == pytest.approx((pred == items.label.iloc[rows].to_numpy()).mean())
    assert clean == pytest.approx((pred == items.clean_label.iloc[rows].to_numpy()).mean())
    assert 'flipped_as_given' not in [getattr(m, 'name', '') for m in learn.metrics]    # removed after the fit
    learn.validate()                                                   # and idle outside a fit

def test_flipped_rows_without_clean_labels():
    assert len(flipped_rows(pd.DataFrame(dict(label=['a'])))) == 0
    assert flipped_rows(pd.DataFrame(dict(label=['a', 'b', 'c'], clean_label=['a', 'a', '']))).tolist() == [1]

def test_memorisation_does_not_change_training(demo_csv):
    "Measuring memorisation leaves the random streams alone: the same seed trains the same weights with and without it."
    from fastai.torch_core import set_seed
    from eac_fastai.data.core import label_dataloaders
    weights = []
    for cbs in ([], [MemorisationCallback()]):
        set_seed(0, reproducible=True)
        learn = eac_learner(label_dataloaders(demo_csv, img_size=32, bs=16, device='cpu'), 'resnet18', method='eac',
                            lam=1.)
        learn.fit(2, 1e-3, cbs=cbs)
        weights.append(torch.cat([p.detach().flatten() for p in learn.model.parameters()]))
    assert torch.equal(*weights)
