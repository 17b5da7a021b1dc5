"The EAC callbacks inside a real fastai Learner: views, loss, gradients, hooks, lr_find, export, predict."
import copy
import pytest, torch, torch.nn.functional as F
from fastai.callback.core import Callback, CancelFitException
from fastai.learner import load_learner
from eac_fastai.data.augment import BasicAug, Erasing
from eac_fastai.methods.eac import EACCallback
from eac_fastai.models.learner import eac_learner
from test_cam import official_cams, official_flip

class Capture(Callback):
    "Record, for every training batch, the logged loss, the back-propagated loss and EAC's consistency term."
    order = 7                                              # after EACCallback (5)
    def __init__(self): self.rows = []
    def after_loss(self):
        if self.training: self.rows.append((self.learn.loss.item(), self.learn.loss_grad.item(),
                                            self.learn.eac.consistency_loss.item()))

def test_backpropagated_loss_is_ce_plus_lambda_consistency(dls):
    cap = Capture()
    learn = eac_learner(dls, 'resnet18', lam=5., cbs=[cap])
    learn.fit(1, 1e-3)
    assert len(cap.rows) == len(dls.train)
    for ce, total, cons in cap.rows:
        assert cons > 0 and total == pytest.approx(ce + 5.*cons, rel=1e-6)

@pytest.mark.parametrize('method', ['eac', 'ac'])
def test_ramp_raises_the_weight_linearly_over_its_epochs(dls, method):
    "With `ramp` 1.5 the back-propagated loss is CE + λ·min(1, (epoch + iter/n_iter)/1.5)·consistency, per batch."
    class Rows(Callback):
        order = 7
        def __init__(self): self.rows = []
        def after_loss(self):
            cb = getattr(self.learn, method)
            if self.training: self.rows.append((self.epoch, self.iter, self.n_iter, self.learn.loss.item(),
                                                self.learn.loss_grad.item(), cb.consistency_loss.item()))
    rows = Rows()
    learn = eac_learner(dls, 'resnet18', method=method, lam=5., ramp=1.5, consistency='relative', cbs=[rows])
    learn.fit(2, 1e-3)
    assert len(rows.rows) == 2*len(dls.train) and rows.rows[0][4] == pytest.approx(rows.rows[0][3], rel=1e-6)
    for epoch, it, n, ce, total, cons in rows.rows:
        assert cons > 0 and total == pytest.approx(ce + 5.*min(1., (epoch + it/n)/1.5)*cons, rel=1e-6)
    assert rows.rows[-1][4] == pytest.approx(rows.rows[-1][3] + 5.*rows.rows[-1][5], rel=1e-6)
    with pytest.raises(ValueError, match='(?s)ramp.*greater than or equal to 0'):
        eac_learner(dls, 'resnet18', method=method, ramp=-1)
    with pytest.raises(ValueError, match="(?s)consistency.*'mse', 'relative' or 'normalized'"):
        eac_learner(dls, 'resnet18', method=method, consistency='l2')

def test_eac_step_matches_formulas_on_fixed_views(dls):
    """Fixed views in, EAC_SPEC §1.2–1.4 out: loss = CE(view 1) + λ·MSE(CAM(view 1), flip(CAM(flipped view))),
    W detached."""
    torch.manual_seed(0)
    learn = eac_learner(dls, 'resnet18', lam=3., erase=Erasing(p=1.), basic=BasicAug(p=1.))
    x, y = (t.as_subclass(torch.Tensor) for t in dls.one_batch())
    ref = copy.deepcopy(learn.model).train()
    learn.model.train()
    learn.eac.before_fit()
    try:
        learn.xb, learn.yb = (x,), (y,)
        learn.training = True
        learn.eac.before_batch()
        v1, v2 = learn.xb[0], learn.eac.x_flip
        learn.pred = learn.model(v1)
        learn.eac.after_pred()
        learn.loss_grad = learn.loss_func(learn.pred, y); learn.loss = learn.loss_grad.clone()
        learn.eac.after_loss()
        learn.loss_grad.backward()
    finally: learn.eac.after_fit()
    f1, f2 = ref[0](v1), ref[0](v2)                         # two separate forward calls: per-view BatchNorm statistics
    w = ref[1][-1].weight.detach()
    cons = F.mse_loss(official_cams(f1, w), official_flip(official_cams(f2, w)))
    total = F.cross_entropy(ref[1](f1), y) + 3.*cons
    torch.testing.assert_close(learn.loss_grad.detach(), total.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(learn.eac.sums[1]/learn.eac.n_seen, cons.detach(), atol=1e-5, rtol=1e-4)
    total.backward()
    for (n, p), (_, q) in zip(learn.model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-3, msg=n)
    # the fc weight gets gradient from CE only: the CAMs use a detached copy of it
    ce_only = copy.deepcopy(ref); ce_only.zero_grad()
    F.cross_entropy(ce_only[1](ce_only[0](v1)), y).backward()
    torch.testing.assert_close(learn.model[1][-1].weight.grad, ce_only[1][-1].weight.grad, atol=1e-5, rtol=1e-4)

def _views(learn, x, **kw):
    cb = EACCallback(**kw); cb.learn = learn; cb.stats = None
    learn.xb, learn.yb = (x,), (torch.zeros(len(x), dtype=torch.long),); cb.before_batch()
    return learn.xb[0], cb.x_flip

def test_noisy_mode_independent_erasing_and_noise_on_original_only(dls):
    learn = eac_learner(dls, 'resnet18')
    x = torch.rand(64, 3, 16, 16) + 1
    v1, v2 = _views(learn, x, mode='noisy', erase=Erasing(p=1.), basic=None)
    assert ((v1 == 0).flip(-1) != (v2 == 0)).flatten(1).any(1).float().mean() > 0.9
    v1, v2 = _views(learn, x, mode='noisy', erase=None, basic=BasicAug(p=1.))
    assert torch.equal(v2, x.flip(-1)) and not torch.equal(v1, x)

def test_clean_mode_exact_mirror(dls):
    learn = eac_learner(dls, 'resnet18')
    x = torch.rand(32, 3, 16, 16) + 1
    v1, v2 = _views(learn, x, mode='clean', erase=Erasing(p=1.), basic=BasicAug(p=1.))
    assert torch.equal(v2, v1.flip(-1)) and not torch.equal(v1, x)

def test_validation_identical_with_and_without_callback(dls):
    torch.manual_seed(0)
    learn = eac_learner(dls, 'resnet18')
    learn.fit(1, 1e-3)
    with_cb, _ = learn.get_preds()
    learn.remove_cb(learn.eac)
    without, _ = learn.get_preds()
    assert torch.equal(with_cb, without)
    plain = eac_learner(dls, 'resnet18', method='baseline'); plain.model.load_state_dict(learn.model.state_dict())
    assert torch.equal(plain.get_preds()[0], with_cb)

def _n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())

def test_no_hooks_left_after_fit_lr_find_or_interrupt(dls, tmp_path):
    # lr_find keeps its temporary weights under path/models
    learn = eac_learner(dls, 'resnet18', path=tmp_path)
    learn.fit(1, 1e-3)
    assert _n_hooks(learn.model) == 0
    learn.lr_find(num_it=8, show_plot=False)
    assert _n_hooks(learn.model) == 0
    class Boom(Callback):
        def after_pred(self): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): learn.fit(1, cbs=Boom())
    learn.fit(1, 1e-3)                                      # a new fit replaces the hook the interrupted one left
    assert _n_hooks(learn.model) == 0
    assert learn.metrics.attrgot('name') == ['accuracy', 'mean_class_accuracy']   # logging metrics removed after fit

@pytest.mark.parametrize('method,kw', [('eac', {}), ('eac', dict(one_forward=True)), ('ac', {})])
def test_model_can_be_deep_copied_between_steps(dls, method, kw):
    "No graph is left on the model after a step (the hook's stored features), so callbacks like an EMA can deepcopy it."
    class CopyModel(Callback):
        def before_fit(self): self.copies = 0
        def after_step(self): copy.deepcopy(self.learn.model); self.copies += 1
    cb = CopyModel()
    eac_learner(dls, 'resnet18', method=method, cbs=[cb], **kw).fit(1, 1e-3)
    assert cb.copies == len(dls.train)

def test_logs_ce_and_consistency_and_works_with_one_cycle(dls):
    "train_ce / train_consistency are the image-weighted epoch means of the per-batch terms."
    cap = Capture()
    learn = eac_learner(dls, 'resnet18', cbs=[cap])
    learn.fit_one_cycle(2, 1e-3)
    names = list(learn.recorder.metric_names)
    assert names == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'mean_class_accuracy', 'train_ce',
                     'train_consistency', 'time']
    per_epoch = len(dls.train)
    for e, row in enumerate(learn.recorder.values):
        batch = cap.rows[e*per_epoch:(e+1)*per_epoch]
        # 56 training images, bs 16, last batch kept (drop_last off)
        w = [16, 16, 16, 8]
        assert row[4] == pytest.approx(sum(b[0]*n for b, n in zip(batch, w))/56, rel=1e-5)
        assert row[5] == pytest.approx(sum(b[2]*n for b, n in zip(batch, w))/56, rel=1e-5)
    lrs = learn.recorder.lrs
    assert lrs[0] < max(lrs) and lrs[-1] < max(lrs) and max(lrs) == pytest.approx(1e-3, rel=0.05)   # one cycle

def test_export_round_trip_and_predict(dls, demo_csv, tmp_path):
    torch.manual_seed(0)
    learn = eac_learner(dls, 'resnet18', path=tmp_path)
    learn.fit(1, 1e-3)
    learn.export('export.pkl')
    loaded = load_learner(tmp_path/'export.pkl')
    img = demo_csv.parent/dls.valid.items.image.iloc[0]
    (c1, _, p1), (c2, _, p2) = learn.predict(img), loaded.predict(img)
    assert c1 == c2 and torch.allclose(p1, p2, atol=1e-6)
    assert hasattr(loaded, 'eac') and _n_hooks(loaded.model) == 0

class CPUAutocast(Callback):
    "MixedPrecision's placement (enter autocast before the batch, leave after the loss) with CPU bfloat16."
    order = 10
    def before_batch(self): self.ctx = torch.autocast('cpu', dtype=torch.bfloat16); self.ctx.__enter__()
    def after_pred(self): self.learn.pred = self.pred.float()
    def after_loss(self): self.ctx.__exit__(None, None, None)

class CamDtype(Callback):
    order = 7
    def __init__(self): self.seen = []
    def after_loss(self):
        if self.training:
            c = self.learn.eac.consistency_loss
            self.seen.append((self.learn.eac.hook.stored, c.dtype, c.item()))

def test_consistency_inside_autocast(dls):
    "The flipped view's forward and the CAMs run inside autocast (bf16 features), the consistency is reduced in fp32."
    rec = CamDtype()
    learn = eac_learner(dls, 'resnet18', cbs=[CPUAutocast(), rec])
    learn.fit(1, 1e-3)
    assert rec.seen and all(d == torch.float32 and 0 < c < float('inf') for _, d, c in rec.seen)
    feats = []
    h = learn.model[0].register_forward_hook(lambda m, i, o: feats.append(o.dtype))
    learn.fit(1, 1e-3); h.remove()
    assert torch.bfloat16 in feats and all(torch.isfinite(torch.tensor(v[:5])).all() for v in learn.recorder.values)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="fastai's MixedPrecision needs CUDA")
def test_mixed_precision_cuda(demo_csv):
    from eac_fastai.data.core import label_dataloaders
    learn = eac_learner(label_dataloaders(demo_csv, img_size=32, bs=16, device='cuda'), 'resnet18').to_fp16()
    learn.fit(1, 1e-3)
    assert torch.isfinite(torch.tensor(learn.recorder.values[-1][:2])).all()

class LossPair(Callback):
    order = 7
    def __init__(self): self.pairs = []
    def after_loss(self):
        if self.training: self.pairs.append((self.learn.loss.item(), self.learn.loss_grad.item()))

def test_lr_find_tracks_the_whole_objective(dls, tmp_path):
    "lr_find smooths and stops on CE + λ·consistency (what is optimised); a fit logs CE as train_loss."
    cb = LossPair()
    learn = eac_learner(dls, 'resnet18', lam=50., cbs=[cb], path=tmp_path)
    learn.lr_find(num_it=6, show_plot=False, suggest_funcs=None)
    assert cb.pairs and all(l == g for l, g in cb.pairs)
    cb.pairs.clear(); learn.fit(1, 1e-4)
    assert cb.pairs and all(l < g for l, g in cb.pairs)

def test_validate_and_inference_leave_training_state_alone(dls):
    "validate/get_preds fire before_fit too: EAC must not hook the body or add its train-only columns there."
    learn = eac_learner(dls, 'resnet18')
    loss, acc, mean_class = learn.validate()
    assert _n_hooks(learn.model) == 0 and learn.metrics.attrgot('name') == ['accuracy', 'mean_class_accuracy']
    learn.fit(1, 1e-3)
    assert learn.recorder.metric_names[-3:] == ['train_ce', 'train_consistency', 'time']
    assert len(learn.validate()) == 3 and _n_hooks(learn.model) == 0

def test_one_forward_equals_two_forward_calls(demo_csv):
    """EAC's one-forward option (both views in one pass, BatchNorm per view) computes the official two-call step: same
    loss, gradients, running stats."""
    from fastai.torch_core import set_seed
    from eac_fastai.data.core import label_dataloaders
    class FirstStep(Callback):
        order = 7
        def after_backward(self):
            self.step_loss = self.learn.loss_grad.detach().clone()
            self.grads = torch.cat([p.grad.flatten() for p in self.learn.model.parameters() if p.grad is not None])
            raise CancelFitException
    runs = []
    for one in (False, True):
        set_seed(1); dls = label_dataloaders(demo_csv, img_size=32, bs=16, device='cpu')
        set_seed(2); learn = eac_learner(dls, 'resnet18', lam=3., one_forward=one, cbs=[FirstStep()])
        set_seed(3)
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
        stats = {k: v.clone() for k, v in learn.model.state_dict().items() if 'running' in k or 'num_batches' in k}
        runs.append((learn.first_step.step_loss, learn.first_step.grads, stats))
    (l1, g1, s1), (l2, g2, s2) = runs
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g1, g2, rtol=1e-3, atol=1e-5)
    # running stats updated once per view
    assert s1.keys() == s2.keys() and s1['0.1.num_batches_tracked'] == 2
    for k in s1: torch.testing.assert_close(s1[k], s2[k], rtol=1e-5, atol=1e-6)
    # BatchNorm restored after the step
    assert not any('forward' in vars(m) for m in learn.model.modules())
