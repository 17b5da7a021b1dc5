"""NLA: its weights, covariances and consistency term pinned on fixed tensors to formulas derived from the official code
(jungyu0413/NLA src/loss.py, src/train.py), checked against scipy's Gaussian, and the loss of a real fit."""
import math
import numpy as np, pytest, torch, torch.nn.functional as F
from fastai.callback.core import Callback
from scipy.stats import multivariate_normal
from eac_fastai.methods.nla import NLACallback, flip_jsd, gaussian_density, naw_covariance, naw_weights
from eac_fastai.models.learner import eac_learner
from eac_fastai.training.schedules import fit_with_schedule

# main_rafdb.py's defaults put through train.py's formulas: t_major = s² + (s/r)², t_minor = −s² + (s/r)²
# (× eps), f_major = s² + (s/r)², f_minor = s² − (s/r)²
TOP = np.array([[0.8**2 + 0.4**2, -(0.8**2 - 0.4**2)], [-(0.8**2 - 0.4**2), 0.8**2 + 0.4**2]])
OTHER = np.array([[0.91**2 + (0.91/6)**2, 0.91**2 - (0.91/6)**2], [0.91**2 - (0.91/6)**2, 0.91**2 + (0.91/6)**2]])

def test_covariances_follow_the_official_parameters():
    np.testing.assert_allclose(naw_covariance(0.8, 2., -1).numpy(), TOP, rtol=1e-6)
    np.testing.assert_allclose(naw_covariance(0.91, 6., 1).numpy(), OTHER, rtol=1e-6)
    np.testing.assert_allclose(naw_covariance(0.8, 2., -1, scale=0.25).numpy(), TOP*[[1, .25], [.25, 1]], rtol=1e-6)

@pytest.mark.parametrize('cov', [TOP, OTHER, np.diag([0.8, 0.8])])
def test_gaussian_density_is_scipys(cov):
    pts = np.array([[0.5, 0.5], [0.9, 0.05], [0.2, 0.7], [0.0, 1.0], [0.3, 0.15]])
    got = gaussian_density(torch.tensor(pts, dtype=torch.float64), torch.tensor([0.3, 0.15], dtype=torch.float64),
                           torch.tensor(cov))
    np.testing.assert_allclose(got.numpy(), multivariate_normal([0.3, 0.15], cov).pdf(pts), rtol=1e-10)

def test_naw_weights_pick_the_gaussian_by_whether_the_label_is_top():
    logits = torch.tensor([[2.0, 1.0, 0.0],    # label 0 is top: the top Gaussian at (p0, p1)
                           [2.0, 1.0, 0.0],    # label 2 is not: the other Gaussian at (p2, p0)
                           [1.0, 1.0, 0.0],    # label 1 ties with 0 for top: counts as top, nearest other = p0
                           [0.0, 3.0, 1.0]])   # label 0, top is 1
    labels = torch.tensor([0, 2, 1, 0])
    top_cov, other_cov = torch.tensor(TOP*[[1, .5], [.5, 1]]), torch.tensor(OTHER)
    w = naw_weights(logits, labels, (0.5, 0.5), top_cov, (0.3, 0.15), other_cov, top_scale=2.)
    p = logits.double().softmax(1).numpy()
    pts = [(p[0, 0], p[0, 1]), (p[1, 2], p[1, 0]), (p[2, 1], p[2, 0]), (p[3, 0], p[3, 1])]
    top = multivariate_normal([0.5, 0.5], top_cov.numpy()).pdf
    other = multivariate_normal([0.3, 0.15], OTHER).pdf
    expected = [2*top(pts[0]), other(pts[1]), 2*top(pts[2]), other(pts[3])]
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)

def test_flip_jsd_is_the_codes_divergence_to_the_mean_logits():
    a = torch.tensor([[1.0, 0.0, -1.0], [0.3, 0.2, 0.1]])
    b = torch.tensor([[0.0, 2.0, 0.5], [0.3, 0.2, 0.1]])
    sm = lambda z: np.exp(z)/np.exp(z).sum(1, keepdims=True)
    q = sm((a.numpy() + b.numpy())/2)                              # softmax of the mean logits
    kl = lambda p: (q*np.log(q/p)).sum(1)                          # KL(q ‖ p)
    expected = (kl(sm(a.numpy())) + kl(sm(b.numpy())))/2
    np.testing.assert_allclose(flip_jsd(a, b).numpy(), expected, rtol=1e-5)
    assert flip_jsd(a, b)[1] == 0                                  # the same logits: no divergence

def test_the_weight_is_not_detached():
    "The official NAW term backpropagates through the weight as well as through CE."
    logits = torch.tensor([[1.5, 0.2, -0.3], [0.1, 0.9, 0.0]], requires_grad=True)
    y = torch.tensor([0, 2])
    cov = torch.tensor(TOP)
    def grad(detach):
        w = naw_weights(logits, y, (0.5, 0.5), cov, (0.3, 0.15), torch.tensor(OTHER))
        loss = (F.cross_entropy(logits, y, reduction='none')*(w.detach() if detach else w)).mean()
        return torch.autograd.grad(loss, logits)[0]
    assert not torch.allclose(grad(False), grad(True))

def test_the_callbacks_loss_backpropagates_through_the_weight():
    "NLACallback's loss has the official gradient, which differs from that of the same loss with the weight detached."
    from types import SimpleNamespace
    torch.manual_seed(0)
    pred, flipped, y = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    cb = NLACallback()
    cb.learn = SimpleNamespace(pred=pred, y=y, x=torch.zeros(6, 1), epoch=3, n_epoch=10)
    cb.flipped_pred, cb.sums, cb.n_seen = flipped, 0., 0
    cb.after_loss()
    got = torch.autograd.grad(cb.learn.loss_grad, pred)[0]
    top, other = cb.covariances()
    def grad(detach):
        ce = F.cross_entropy(pred, y, reduction='none')
        w = naw_weights(pred, y, (0.5, 0.5), top, (0.3, 0.15), other)
        loss = 0.5*ce.mean() + 0.5*(ce*(w.detach() if detach else w)).mean() + 0.5*flip_jsd(pred, flipped).sum()
        return torch.autograd.grad(loss, pred)[0]
    torch.testing.assert_close(got, grad(False))
    assert not torch.allclose(got, grad(True))

def test_the_top_gaussians_correlation_grows_over_the_epochs():
    cb = NLACallback()
    cb.n_epoch = 60
    for epoch in (0, 1, 30, 59):
        cb.epoch = epoch
        share = 1 - math.exp(-15*epoch/60)
        assert cb.correlation() == pytest.approx(share)
        top, other = cb.covariances()
        np.testing.assert_allclose(top.numpy(), TOP*[[1, share], [share, 1]], rtol=1e-6)
        np.testing.assert_allclose(other.numpy(), OTHER, rtol=1e-6)
    cb.anneal = False
    assert cb.correlation() == 1

class _Capture(Callback):
    "The batch the model saw, its mirror, the labels and the loss NLA built, per training batch."
    order = 7
    def before_fit(self): self.rows = []
    def before_batch(self):
        if self.training: self.rows.append(dict(x=self.xb[0].clone(), flip=self.nla.x_flip.clone(), y=self.y.clone()))
    def after_loss(self):
        if self.training: self.rows[-1].update(loss=self.learn.loss_grad.detach().clone())

def test_the_loss_of_a_real_fit(dls):
    "0.5·CE + 0.5·mean(w·CE) + 0.5·Σ JSD over the batch; the second view the exact mirror, in its own forward."
    cap = _Capture()
    learn = eac_learner(dls, 'resnet18', method='nla', cbs=[cap], flip=None)
    with learn.no_bar(), learn.no_logging(): fit_with_schedule(learn, 'constant', 1, 0.)   # lr 0: weights unchanged
    r, model = cap.rows[0], learn.model
    assert torch.equal(r['flip'], r['x'].flip(-1))
    model.train()
    with torch.no_grad():
        # the same batch statistics again, each view on its own
        z, zf = model(r['x']).as_subclass(torch.Tensor), model(r['flip']).as_subclass(torch.Tensor)
    y = r['y'].as_subclass(torch.Tensor)
    ce = F.cross_entropy(z, y, reduction='none')
    top = torch.tensor(np.diag(np.diag(TOP)))                      # epoch 0: no correlation yet
    w = naw_weights(z, y, (0.5, 0.5), top, (0.3, 0.15), torch.tensor(OTHER))
    expected = 0.5*ce.mean() + 0.5*(ce*w).mean() + 0.5*flip_jsd(z, zf).sum()
    torch.testing.assert_close(r['loss'], expected, rtol=1e-4, atol=1e-5)
    assert {'train_ce', 'train_naw', 'train_jsd'} <= set(learn.recorder.metric_names)
