"Schedules (per-epoch exp and cosine as torch steps them, fastai's one-cycle) and torch-Adam semantics."
import pytest, torch
from eac_fastai.models.learner import eac_learner
from eac_fastai.training.schedules import fit_with_schedule, step_cos, step_exp

def test_step_functions_match_torch_schedulers():
    n = 6
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    exp = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=n)
    for e in range(n):
        for pos in (e/n, (e+0.5)/n, (e+1)/n - 1e-6):
            assert step_exp(0.1, 0.9, n)(pos) == pytest.approx(opt.param_groups[0]['lr'])
            assert step_cos(0.1, n)(pos) == pytest.approx(opt2.param_groups[0]['lr'])
        opt.step(); exp.step(); opt2.step(); cos.step()

def test_exp_schedule_in_a_fit(dls):
    learn = eac_learner(dls, 'resnet18', method='baseline')
    fit_with_schedule(learn, 'exp', 3, 1e-3, gamma=0.5)
    per_epoch = len(dls.train)
    lrs = learn.recorder.lrs
    assert [lrs[i*per_epoch] for i in range(3)] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert lrs[per_epoch-1] == pytest.approx(1e-3)

def test_one_cycle_and_flat_cos(dls):
    learn = eac_learner(dls, 'resnet18', method='baseline')
    fit_with_schedule(learn, 'one_cycle', 2, 1e-3)
    assert max(learn.recorder.lrs) == pytest.approx(1e-3, rel=0.05) and learn.recorder.lrs[0] < 1e-4
    fit_with_schedule(learn, 'flat_cos', 2, 1e-3)
    lrs = learn.recorder.lrs
    assert lrs[0] == lrs[len(lrs)//2] == pytest.approx(1e-3) and lrs[-1] < 0.6e-3       # flat, then cosine down

def test_torch_adam_with_coupled_weight_decay_everywhere(dls):
    learn = eac_learner(dls, 'resnet18')
    learn.fit(1, 1e-3)                                          # fastai applies the learner's wd when fitting
    opt = learn.opt.opt
    assert isinstance(opt, torch.optim.Adam)
    for g in opt.param_groups:
        assert (g['weight_decay'] == 1e-4 and g['betas'] == (0.9, 0.999) and g['eps'] == 1e-8
                and not g.get('decoupled_weight_decay', False))
    n_params = sum(len(g['params']) for g in opt.param_groups)
    assert n_params == len(list(learn.model.parameters()))     # BatchNorm and bias decayed too, like torch.optim.Adam
    fa = eac_learner(dls, 'resnet18', opt='fastai_adam'); fa.create_opt()
    assert type(fa.opt).__name__ == 'Optimizer'

def test_wd_bn_bias_off_only_where_it_works(dls):
    with pytest.raises(ValueError, match='needs opt fastai_adam or fastai_sgd'):
        eac_learner(dls, 'resnet18', opt='adam', wd_bn_bias=False)
    learn = eac_learner(dls, 'resnet18', opt='fastai_adam', wd_bn_bias=False); learn.create_opt()
    bn = learn.model[0][1].weight
    assert learn.opt.state[bn]['do_wd'] is False
