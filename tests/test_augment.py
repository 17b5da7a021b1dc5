"Per-image random erasing (torchvision semantics) and the official Gaussian-noise basic augmentation."
import math
import pytest, torch
from torchvision.transforms import RandomErasing
from eac_fastai.data.augment import Erasing, gaussian_noise, random_erasing

def boxes(x, erased):
    "Height, width of the erased rectangle of each image (NaN where nothing was erased)."
    m = (x != erased).any(1)                               # N×H×W: pixels that changed
    hs, ws = m.any(2).sum(1).float(), m.any(1).sum(1).float()
    hs[hs == 0], ws[ws == 0] = math.nan, math.nan
    return hs, ws

@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(4000, 3, 20, 24) + 1                 # never 0, so erased pixels (value 0) are visible

def test_erasing_probability_area_ratio(batch):
    out = random_erasing(batch, p=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3))
    hs, ws = boxes(out, batch)
    done = ~hs.isnan()
    assert abs(done.float().mean().item() - 0.5) < 0.03
    area = (hs*ws)[done] / (20*24)
    assert area.min() >= 0.02*0.5 and area.max() <= 0.25*1.5     # rounding of h and w to integers
    aspect = (hs/ws)[done]
    assert aspect.min() >= 0.3*0.5 and aspect.max() <= 3.3*2
    erased = out[(out != batch).any(1, keepdim=True).expand_as(out)]
    assert (erased == 0).all()                              # value 0 after Normalize = the mean colour

def test_erasing_matches_torchvision_distribution(batch):
    "Same erase rate and area law as torchvision's per-image RandomErasing (statistically)."
    torch.manual_seed(1)
    tv = RandomErasing(p=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3), value=0)
    ref = torch.stack([tv(im) for im in batch[:2000]])
    ours = random_erasing(batch[:2000], 0.5, (0.02, 0.25), (0.3, 3.3))
    (rh, rw), (oh, ow) = boxes(ref, batch[:2000]), boxes(ours, batch[:2000])
    assert abs((~rh.isnan()).float().mean() - (~oh.isnan()).float().mean()) < 0.05
    ra, oa = (rh*rw)[~rh.isnan()].mean(), (oh*ow)[~oh.isnan()].mean()
    assert abs(ra - oa)/ra < 0.06
    rar, oar = (rh/rw)[~rh.isnan()].log().mean(), (oh/ow)[~oh.isnan()].log().mean()
    assert abs(rar - oar) < 0.08

def test_erasing_independent_per_image(batch):
    out = random_erasing(batch, p=1.)
    hs, ws = boxes(out, batch)
    assert (~hs.isnan()).float().mean() > 0.97
    tops = (out != batch).any(1).any(2).float().argmax(1)
    assert len(set(zip(hs.tolist(), ws.tolist(), tops.tolist()))) > 500
    a = random_erasing(batch, p=0.5)
    decided = (a != batch).flatten(1).any(1).float()
    assert abs(torch.corrcoef(torch.stack([decided[::2], decided[1::2]]))[0, 1]) < 0.1

def test_erasing_random_and_per_channel_values(batch):
    out = random_erasing(batch[:50], p=1., value='random')
    filled = out[out != batch[:50]]
    # N(0, 1) fill
    assert filled.numel() > 1000 and abs(filled.std().item() - 1) < 0.1 and abs(filled.mean().item()) < 0.1
    out = random_erasing(batch[:50], p=1., value=(0.1, 0.2, 0.3))
    changed = (out != batch[:50])
    for c, v in enumerate((0.1, 0.2, 0.3)):
        assert changed[:, c].any() and torch.allclose(out[:, c][changed[:, c]], torch.tensor(v))

def test_erasing_p0_is_identity(batch):
    assert torch.equal(random_erasing(batch[:20], p=0.), batch[:20])
    assert torch.equal(Erasing(p=0.)(batch[:20]), batch[:20])

def test_gaussian_noise_on_pixel_scale():
    torch.manual_seed(0)
    mean, std = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                 torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    pix = torch.randint(60, 200, (64, 3, 16, 16)).float()
    x = (pix/255 - mean)/std
    out = gaussian_noise(x, p=1., var=30., mean=mean, std=std)
    back = (out*std + mean)*255
    assert torch.allclose(back, back.round(), atol=1e-3)              # uint8 values again
    diff = back.round() - pix
    assert abs(diff.std().item() - math.sqrt(30)) < 0.3
    # truncation to uint8 (official astype) biases by -0.5
    assert abs(diff.mean().item() + 0.5) < 0.1
    assert torch.equal(gaussian_noise(x, p=0., mean=mean, std=std), x)
    some = gaussian_noise(x, p=0.5, mean=mean, std=std)
    changed = (some != x).flatten(1).any(1).float().mean().item()
    assert 0.3 < changed < 0.7

def test_random_crop_is_a_shifted_copy_padded_with_fill():
    from eac_fastai.data.augment import random_crop
    x = torch.arange(2*3*5*6, dtype=torch.float).reshape(2, 3, 5, 6)
    torch.manual_seed(0)
    shifts = set()
    for _ in range(30):
        y = random_crop(x, 2, fill=-1.)
        assert y.shape == x.shape
        for i in range(2):
            found = [(dt, dl) for dt in range(-2, 3) for dl in range(-2, 3)
                     if torch.equal(y[i],
                                    torch.nn.functional.pad(x[i], (2, 2, 2, 2), value=-1.)[:, 2+dt:7+dt, 2+dl:8+dl])]
            assert len(found) == 1
            shifts.add(found[0])
    assert len(shifts) > 10                                              # offsets drawn per image over the whole range

def test_basic_aug_applies_one_op_with_probability_p():
    from eac_fastai.data.augment import basic_aug
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 4, 4)
    y = basic_aug(x, p=0.5, ops=('flip', 'noise'), mean=torch.zeros(3, 1, 1), std=torch.ones(3, 1, 1))
    flipped = (y == x.flip(-1)).flatten(1).all(1) & ~(y == x).flatten(1).all(1)
    same = (y == x).flatten(1).all(1)
    noisy = ~flipped & ~same
    for share, want in ((same, 0.5), (flipped, 0.25), (noisy, 0.25)):
        assert abs(share.float().mean().item() - want) < 0.03
    with pytest.raises(ValueError, match='unknown basic augmentation'): basic_aug(x[:2], p=1., ops=('blur',))

def test_random_flip_mirrors_each_image_with_probability_p():
    from eac_fastai.data.augment import random_flip
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 4, 4)
    y = random_flip(x, 0.5)
    flipped, same = (y == x.flip(-1)).flatten(1).all(1), (y == x).flatten(1).all(1)
    assert (flipped ^ same).all() and abs(flipped.float().mean().item() - 0.5) < 0.03
    assert torch.equal(random_flip(x, 0.), x) and torch.equal(random_flip(x, 1.), x.flip(-1))

def test_the_fair_baselines_flip_is_drawn_apart_from_its_noise(tmp_path):
    "fmnist's baseline_flip: a flip with p 0.5 and, independently, Gaussian noise with p 0.5 (not one of the two)."
    from pathlib import Path
    from eac_fastai.training.recipe import load_recipe
    from eac_fastai.training.build import recipe_method
    cb = recipe_method(load_recipe(f"{Path(__file__).parent.parent/'recipes'/'fmnist.yaml'}#sym30-baseline_flip"))
    cb.stats, cb.erase = None, None
    torch.manual_seed(0)
    x = torch.rand(8000, 1, 4, 4).mul(255).floor().div(255)                     # 8-bit images, as the noise op expects
    y = cb.augment(x)
    dist = lambda a: (y - a).abs().flatten(1).mean(1)
    flipped = dist(x.flip(-1)) < dist(x)                      # noise moves a pixel by ~5/255, a flip by far more
    noisy = ~((y == x) | (y == x.flip(-1))).flatten(1).all(1)
    for share, want in ((flipped, 0.5), (noisy, 0.5), (flipped & noisy, 0.25)):
        assert abs(share.float().mean().item() - want) < 0.03
