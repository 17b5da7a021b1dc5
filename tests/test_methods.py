"""SCN, RUL and Attention Consistency: each loss pinned to its formula (EAC_SPEC §6) on fixed tensors, and each method
in a real fit."""
import copy
import pytest, torch, torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.learner import load_learner
from eac_fastai.data.augment import BasicAug
from eac_fastai.methods.cam import class_activation_maps, linear_head
from eac_fastai.methods import METHODS
from eac_fastai.training.schema import Recipe
from eac_fastai.models.learner import eac_learner
from eac_fastai.methods.rul import RULHead, add_up_loss, uncertainty_mix
from eac_fastai.training.schedules import fit_with_schedule
from eac_fastai.methods.relabel import margin_relabel
from eac_fastai.methods.scn import SCNHead, rank_regularization

def _fit(learn, epochs=1, lr=1e-3, schedule='constant'):
    with learn.no_bar(), learn.no_logging(): fit_with_schedule(learn, schedule, epochs, lr)

def test_rank_regularization_formula():
    alpha = torch.tensor([0.9, 0.1, 0.8, 0.3, 0.7, 0.2, 0.6, 0.5, 0.4, 0.35])
    # ⌊0.7·10⌋ = 7 high
    high, low = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.35]).mean(), torch.tensor([0.3, 0.2, 0.1]).mean()
    torch.testing.assert_close(rank_regularization(alpha, 0.7, 0.6), 0.6 - (high - low))
    assert rank_regularization(alpha, 0.7, 0.15) == 0                                # groups already far enough apart
    assert rank_regularization(torch.tensor([0.5]), 0.7, 0.15) == 0                  # one image: no low group

def test_rank_regularization_gradient_pushes_groups_apart():
    alpha = torch.tensor([0.5, 0.52, 0.48, 0.51], requires_grad=True)
    rank_regularization(alpha, 0.5, 1.).backward()
    # descent raises the high, lowers the low
    assert (alpha.grad[[1, 3]] < 0).all() and (alpha.grad[[0, 2]] > 0).all()

def test_scn_relabel_rule():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.45, 0.35, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    labels = torch.tensor([1, 1, 2, 0])
    new, changed = margin_relabel(probs, labels, 0.2)
    # 0.7−0.2 > 0.2; 0.45−0.35 is not
    assert changed.tolist() == [True, False, False, False] and new.tolist() == [0, 1, 2, 0]
    new, changed = margin_relabel(probs, labels, 0.05, allowed=torch.tensor([False, True, True, True]))
    assert changed.tolist() == [False, True, False, True] and new.tolist() == [1, 0, 2, 2]

def test_scn_head_scales_logits_by_importance():
    head = SCNHead(4, 3)
    x = torch.randn(5, 4, 2, 2)
    f = x.mean((2, 3))
    torch.testing.assert_close(head(x), torch.sigmoid(head.importance[0](f)) * head.fc(f))

def test_uncertainty_mix_and_add_up_loss_formulas():
    mu, log_var = (torch.tensor([[1., 0.], [0., 2.], [3., 3.]]),
                   torch.log(torch.tensor([[1., 1.], [3., 3.], [2., 6.]])))
    perm = torch.tensor([1, 2, 0])
    u = torch.tensor([1., 3., 4.])                                                   # mean of exp(log-variance)
    a = (u/(u + u[perm]))[:, None]
    torch.testing.assert_close(uncertainty_mix(mu, log_var, perm), a*mu + (1 - a)*mu[perm])
    torch.testing.assert_close(uncertainty_mix(mu, log_var, perm)[0], torch.tensor([0.25*1 + 0.75*0, 0.25*0 + 0.75*2]))
    logits, y = torch.randn(3, 4), torch.tensor([0, 3, 1])
    torch.testing.assert_close(add_up_loss(logits, y, perm),
                               0.5*F.cross_entropy(logits, y) + 0.5*F.cross_entropy(logits, y[perm]))

def test_rul_head_mixes_in_training_and_uses_the_mean_at_test():
    head = RULHead(8, 3, (2, 2), dim=4)
    x = torch.randn(6, 8, 2, 2)
    head.train(); torch.manual_seed(0); out = head(x)
    assert out.shape == (6, 3) and head.perm is not None and sorted(head.perm.tolist()) == list(range(6))
    head.eval(); torch.testing.assert_close(head(x), head.fc(head.mu(x)))
    assert [type(m).__name__ for m in head.mu] == ['BatchNorm2d', 'Dropout', 'Flatten', 'Linear', 'BatchNorm1d']
    assert not head.mu[0].affine and head.mu[0].eps == 2e-5 and head.mu[3].in_features == 8*2*2

class _Capture(Callback):
    "Keeps what the method callback leaves in the learner, batch by batch."
    order = 7
    def before_fit(self): self.rows = []
    def before_batch(self):
        if self.training: self.rows.append(dict(xb=self.xb[0].detach().clone(), yb=self.yb[0].detach().clone()))
    def after_loss(self):
        if self.training:
            self.rows[-1].update(loss_grad=self.learn.loss_grad.detach().clone(), pred=self.pred.detach().clone())

def test_ac_one_forward_over_both_views_ce_on_both_plus_consistency(dls):
    cap = _Capture()
    learn = eac_learner(dls, 'resnet18', method='ac', lam=2., basic=None, cbs=[cap])
    ref = copy.deepcopy(learn.model)
    x, y = (t.as_subclass(torch.Tensor) for t in dls.one_batch())
    learn.xb, learn.yb = (x,), (y,)
    learn.ac.stats = None
    learn.ac.learn = learn
    learn.ac.before_batch()
    xb, yb = learn.xb[0], learn.yb[0]
    assert (xb.shape[0] == 2*len(x) and torch.equal(xb[len(x):], xb[:len(x)].flip(-1)) and
            torch.equal(yb, torch.cat([y, y])))
    assert torch.equal(xb[:len(x)], x)                                               # AC erases nothing
    learn.ac.before_fit()
    ref.train(); learn.model.train()
    learn.pred = learn.model(xb); learn.ac.after_pred()
    # one forward: shared BatchNorm statistics
    feats = ref[0](xb)
    m1, m2 = class_activation_maps(feats, linear_head(ref).weight.detach()).chunk(2)
    torch.testing.assert_close(learn.ac.consistency_loss, F.mse_loss(m1, m2.flip(-1)))
    learn.loss_grad = F.cross_entropy(learn.pred, yb)
    learn.loss = learn.loss_grad.clone()
    learn.ac.after_loss()
    ce = 0.5*(F.cross_entropy(ref(xb)[:len(x)], y) + F.cross_entropy(ref(xb)[len(x):], y))
    torch.testing.assert_close(learn.loss_grad, ce + 2.*F.mse_loss(m1, m2.flip(-1)), atol=1e-4, rtol=1e-4)
    learn.ac.after_fit()

def test_scn_relabels_persist_and_feed_the_loss(dls):
    cap = _Capture()
    # margin 0: every image takes the argmax
    learn = eac_learner(dls, 'resnet18', method='scn', margin2=0., relabel_epoch=1, cbs=[cap])
    _fit(learn, 2)
    scn = learn.scn
    assert scn.relabelled_share() > 0 and (scn.labels != scn.given).sum() > 0
    frame = scn.relabel_frame()
    assert len(frame) == len(dls.train_ds) and frame.relabelled.sum() == (scn.labels != scn.given).sum()
    assert ((frame.scn_label != frame.given).sum() == frame.relabelled.sum() and
            set(frame.image) == set(dls.train_ds.items.image))
    hist = learn.recorder.values
    # train_loss, valid_loss, accuracy, mean_class_accuracy, train_ce, train_rank_reg, relabelled
    assert len(hist[-1]) == 7

def test_rul_relabels_only_when_asked_by_scns_rule_on_the_unmixed_prediction(dls):
    official = eac_learner(dls, 'resnet18', method='rul')
    _fit(official)
    assert official.rul.labels is None and 'relabelled' not in official.recorder.metric_names   # the official code
    class Keep(Callback):
        order = 7
        def before_fit(self): self.rows = []
        def before_batch(self):
            if self.training: self.rows.append((self.xb[0].clone(), self.rul.batch_idx.clone(), self.y.clone()))
    keep = Keep()
    # no dropout and lr 0: the unmixed prediction can be recomputed from the batch
    learn = eac_learner(dls, 'resnet18', method='rul', drop=0., relabel=True, relabel_epoch=1, relabel_margin=0.05,
                        cbs=[keep])
    _fit(learn, 1, lr=0.)
    rul, model = learn.rul, learn.model
    assert rul.relabelled_share() > 0 and 'relabelled' in learn.recorder.metric_names
    model.train()
    for x, idx, y in keep.rows:
        with torch.no_grad(): probs = F.softmax(model[1].fc(model[1].mu(model[0](x))), 1)
        expected, _ = margin_relabel(probs, y.as_subclass(torch.Tensor), 0.05)
        assert torch.equal(rul.labels[idx], expected)
    assert set(rul.relabel_frame().columns) >= {'given', 'rul_label', 'relabelled'}

def test_scn_batches_train_on_the_current_labels(dls):
    seen = []
    class Check(Callback):
        order = 6
        def before_batch(self):
            if self.training:
                seen.append(torch.equal(self.yb[0].cpu(), self.learn.scn.labels[self.learn.scn.batch_idx]))
    learn = eac_learner(dls, 'resnet18', method='scn', margin2=0., relabel_epoch=1, relabel='low', cbs=[Check()])
    _fit(learn, 2)
    assert all(seen) and len(seen) == 2*len(dls.train)
    # the top-importance images keep their label
    assert 0 < learn.scn.relabelled_share() < 1
    # the sampler is restored after the fit
    assert 'get_idxs' not in vars(learn.dls.train)

def test_scn_loss_is_ce_of_scaled_logits_plus_rank_reg(dls):
    cap = _Capture()
    # a large margin: RR is active
    learn = eac_learner(dls, 'resnet18', method='scn', margin1=10., relabel='none', cbs=[cap])
    # lr 0: the weights stay as they were
    _fit(learn, 1, lr=0.)
    r, head = cap.rows[0], learn.model[1]
    learn.model.train()
    with torch.no_grad():
        # the same batch statistics again
        alpha = head.importance(head.flatten(head.pool(learn.model[0](r['xb']))))[:, 0]
    torch.testing.assert_close(r['loss_grad'],
                               F.cross_entropy(r['pred'], r['yb']) + rank_regularization(alpha, 0.7, 10.))

def test_rul_loss_groups_and_learning_rates(dls):
    class StepLRs(Callback):
        order = 99                                                                   # after RUL's before_step
        def before_fit(self): self.lrs = []
        def before_step(self): self.lrs.append([g['lr'] for g in self.opt.opt.param_groups])
    cap, step = _Capture(), StepLRs()
    learn = eac_learner(dls, 'resnet18', method='rul', cbs=[cap, step])
    assert isinstance(learn.model[1], RULHead)
    _fit(learn, 1, lr=1e-3)
    # at each step
    assert len(step.lrs) == len(dls.train) and all(lrs == pytest.approx([1e-3, 1e-2]) for lrs in step.lrs)
    # the schedule's, between steps
    assert [g['lr'] for g in learn.opt.opt.param_groups] == pytest.approx([1e-3, 1e-3])
    # what fastai logs
    assert learn.recorder.lrs == pytest.approx([1e-3]*len(dls.train))
    assert (sum(p.numel() for p in learn.opt.opt.param_groups[1]['params']) ==
            sum(p.numel() for p in learn.model[1].fc.parameters()))
    r = cap.rows[0]
    # the pairing is consumed by the loss
    assert r['loss_grad'] > 0 and learn.model[1].perm is None

@pytest.mark.parametrize('method', list(METHODS))
def test_every_method_trains_exports_and_predicts(dls, method, tmp_path):
    learn = eac_learner(dls, 'resnet18', method=method, path=tmp_path)
    _fit(learn, 1)
    assert len(learn.recorder.values) == 1 and 0 <= learn.recorder.values[-1][2] <= 1
    learn.export('m.pkl')
    loaded = load_learner(tmp_path/'m.pkl')
    item = dls.valid_ds.items.path.iloc[0]
    pred, idx, probs = loaded.predict(item)
    assert pred in dls.vocab and probs.shape == (len(dls.vocab),) and torch.isclose(probs.sum(), torch.tensor(1.))

def test_flip_is_refused_in_the_basic_aug_of_flip_methods():
    for method in ('eac', 'ac'):
        with pytest.raises(ValueError, match='flip'): METHODS[method](basic=BasicAug(ops=('flip', 'noise')))

@pytest.mark.parametrize('method', ['ac', 'scn', 'rul', 'nla'])
def test_lr_find_leaves_every_method_as_it_was(dls, method, tmp_path):
    learn = eac_learner(dls, 'resnet18', method=method, path=tmp_path,
                        **(dict(relabel_epoch=1, margin2=0.) if method == 'scn' else {}))
    before = copy.deepcopy(learn.model.state_dict())
    with learn.no_bar(), learn.no_logging(): learn.lr_find(1e-5, 1e-1, num_it=20, show_plot=False, suggest_funcs=None)
    # the rate the body steps at (RUL: fc ×10)
    assert len(learn.recorder.losses) > 5 and learn.recorder.lrs[0] == pytest.approx(1e-5)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in before.items())   # lr_find restores the weights
    assert not any(m._forward_hooks for m in learn.model.modules())                      # no hook left behind
    # only accuracy: the logged terms are removed
    assert len(learn.metrics) == 2                                                   # accuracy, mean class accuracy
    if method == 'scn': assert learn.scn.relabelled_share() == 0 and 'get_idxs' not in vars(learn.dls.train)

def test_rul_classifier_lr_under_fastais_own_fits(dls, tmp_path):
    learn = eac_learner(dls, 'resnet18', method='rul')
    for fit in (lambda: learn.fit_one_cycle(1, 1e-3), lambda: learn.fit(1, 1e-3)):
        seen = []
        class Watch(Callback):
            order = 99
            def before_step(self): seen.append([g['lr'] for g in self.opt.opt.param_groups])
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(Watch()): fit()
        assert seen and all(b == pytest.approx(10*a) for a, b in seen)             # every step, whatever set the rates
    from eac_fastai.models.weights import read_state_dict
    learn.path = tmp_path
    # its optimizer state holds numpy scalars
    saved = learn.save('last', with_opt=True)
    # usable as model.weights
    assert torch.equal(read_state_dict(saved)['0.0.weight'], learn.model[0][0].weight.detach())

def test_rul_refuses_a_last_batch_of_one(demo_csv):
    from eac_fastai.data.core import label_dataloaders
    from eac_fastai.errors import UserError
    dls = label_dataloaders(demo_csv, img_size=32, bs=55, device='cpu')              # 56 training images: 55 + 1
    learn = eac_learner(dls, 'resnet18', method='rul')
    with pytest.raises(UserError, match='last batch of one image'): _fit(learn)
    ok = label_dataloaders(demo_csv, img_size=32, bs=55, drop_last=True, device='cpu')
    eac_learner(ok, 'resnet18', method='rul').rul.check_data(ok)                       # drop_last: no error

@pytest.mark.parametrize('method', ['eac', 'scn'])
def test_an_interrupted_fit_leaves_a_usable_learner(dls, method, tmp_path):
    class Stop(Callback):
        def after_batch(self):
            if self.training and self.iter == 1: raise KeyboardInterrupt
    learn = eac_learner(dls, 'resnet18', method=method, path=tmp_path)
    with pytest.raises(KeyboardInterrupt), learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=Stop())
    preds, targs = learn.get_preds(ds_idx=0)
    # dataset order: no sampler left patched
    assert targs.tolist() == [dls.vocab.o2i[l] for l in dls.train_ds.items.label]
    learn.export('m.pkl')
    assert load_learner(tmp_path/'m.pkl').predict(dls.valid_ds.items.path.iloc[0])[2].shape == (len(dls.vocab),)
    _fit(learn)                                                                      # and it trains again
    assert len(learn.metrics) == 2                                                   # accuracy, mean class accuracy

@pytest.mark.parametrize('method', list(METHODS))
def test_each_method_has_one_home_for_its_settings(method):
    "Defaults and checks come from the method's section; the recipe schema has that very section under its name."
    cls = METHODS[method]
    cb = cls()
    assert all(getattr(cb, k) == v for k, v in cls.config())
    with pytest.raises(ValueError, match='no_such_setting'): cls(no_such_setting=1)
    if cls.config.model_fields: assert Recipe.model_fields[method].annotation is cls.config
    else: assert method not in Recipe.model_fields
