"CAMs and the flip-consistency loss against the official formulas (EAC_SPEC §1.2–1.4)."
import pytest, torch, torch.nn.functional as F
from eac_fastai.methods.cam import class_activation_maps, flip_consistency, linear_head

def official_flip(cams):
    "The official flip: grid_sample with the x coordinate negated, bilinear, border padding, align_corners=True."
    n, _, h, w = cams.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing='ij')
    grid = torch.stack([-xs, ys], -1).expand(n, h, w, 2)
    return F.grid_sample(cams, grid, mode='bilinear', padding_mode='border', align_corners=True)

def official_cams(features, weight):
    "The official broadcast product N×K×C×H×W summed over C."
    n, c, h, w = features.shape
    return (weight.view(1, -1, c, 1, 1) * features.unsqueeze(1)).sum(2)

def test_flip_equals_official_grid_sample():
    for shape in [(4, 7, 7, 7), (3, 5, 6, 9), (2, 7, 2, 2)]:
        m = torch.randn(shape)
        torch.testing.assert_close(m.flip(-1), official_flip(m), atol=1e-5, rtol=1e-5)   # float rounding of the grid

def test_cam_shape_and_official_formula():
    f, w = torch.randn(3, 16, 4, 5), torch.randn(7, 16)
    cams = class_activation_maps(f, w)
    assert cams.shape == (3, 7, 4, 5)
    torch.testing.assert_close(cams, official_cams(f, w), atol=1e-5, rtol=1e-5)

def test_cam_is_linear_in_features():
    f1, f2, w = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3), torch.randn(7, 8)
    torch.testing.assert_close(class_activation_maps(2*f1 - 3*f2, w),
                               2*class_activation_maps(f1, w) - 3*class_activation_maps(f2, w), atol=1e-5, rtol=1e-5)

def test_cam_averages_to_logits_without_bias():
    "Global average of each class map + bias = the GAP → Linear head's logit: the head is CAM-compatible."
    f, lin = torch.randn(2, 8, 3, 3), torch.nn.Linear(8, 7)
    logits = lin(f.mean((2, 3)))
    torch.testing.assert_close(class_activation_maps(f, lin.weight).mean((2, 3)) + lin.bias, logits,
                               atol=1e-5, rtol=1e-5)

def test_flip_consistency_by_hand():
    "Fixed tensors: MSE over all N·K·H·W elements between M1 and flip_W(M2)."
    m1 = torch.tensor([[[[1., 2.], [3., 4.]]]])               # N=1, K=1, 2×2
    m2 = torch.tensor([[[[0., 1.], [1., 1.]]]])               # flipped back: [[1,0],[1,1]]
    assert flip_consistency(m1, m2).item() == ((1-1)**2 + (2-0)**2 + (3-1)**2 + (4-1)**2) / 4
    m = torch.randn(2, 7, 3, 3)
    assert flip_consistency(m, m.flip(-1)).item() == 0
    torch.testing.assert_close(flip_consistency(m, m), F.mse_loss(m, official_flip(m)))

def test_relative_consistency_by_hand():
    "Fixed tensors: the MSE ÷ the mean of the two views' mean squared CAMs, the scale detached; invariant to scale."
    m1 = torch.tensor([[[[1., 2.], [3., 4.]]]], requires_grad=True)
    m2 = torch.tensor([[[[0., 1.], [1., 1.]]]])
    mse = ((1-1)**2 + (2-0)**2 + (3-1)**2 + (4-1)**2) / 4                  # 17/4
    energy = ((1 + 4 + 9 + 16)/4 + (0 + 1 + 1 + 1)/4) / 2                # 33/8
    rel = flip_consistency(m1, m2, 'relative')
    assert rel.item() == pytest.approx(mse/energy)
    rel.backward()                                           # the scale is a constant: d/dM1 = 2(M1-M2')/4/energy
    torch.testing.assert_close(m1.grad, 2*(m1 - m2.flip(-1)).detach()/4/energy)
    m, n = torch.randn(2, 7, 3, 3), torch.randn(2, 7, 3, 3)
    torch.testing.assert_close(flip_consistency(0.01*m, 0.01*n, 'relative'), flip_consistency(m, n, 'relative'))
    assert flip_consistency(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), 'relative').item() == 0
    with pytest.raises(ValueError, match="consistency must be one of mse, relative, normalized, got 'l1'"):
        flip_consistency(m, n, 'l1')

def test_normalized_consistency_by_hand():
    "Fixed tensors: per image, the MSE ÷ its two views' mean squared CAM, averaged; no gradient along the scale."
    m1 = torch.tensor([[[[1., 2.], [3., 4.]]], [[[1., 0.], [0., 0.]]]], requires_grad=True)
    m2 = torch.tensor([[[[0., 1.], [1., 1.]]], [[[0., 0.], [0., 2.]]]], requires_grad=True)
    first = (17/4) / (33/8)                                  # as in the relative test: image 1 alone
    second = ((1 - 0)**2 + (0 - 2)**2)/4 / ((1/4 + 4/4)/2)  # m2[1] flipped back: [[0, 0], [2, 0]]; = 2
    norm = flip_consistency(m1, m2, 'normalized')
    assert norm.item() == pytest.approx((first + second)/2)
    norm.backward()                                  # d/ds L(s·M1, s·M2) = 0: the gradient is orthogonal to (M1, M2)
    radial = (m1.grad*m1).sum() + (m2.grad*m2).sum()
    assert abs(radial.item()) < 1e-6 and m1.grad.abs().sum() > 0
    m, n = torch.randn(2, 7, 3, 3), torch.randn(2, 7, 3, 3)
    torch.testing.assert_close(flip_consistency(0.01*m, 0.01*n, 'normalized'), flip_consistency(m, n, 'normalized'))
    assert flip_consistency(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), 'normalized').item() == 0

def test_linear_head_is_last_linear():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    assert linear_head(model) is model[1][1]
