"Backbones by name: fastai cuts each before its pooling, the head stays GAP → Linear, torchvision names load."
import pickle
import pytest, torch, torchvision
from torch import nn
from fastai.layers import Flatten
from fastai.losses import CrossEntropyLossFlat
from fastai.callback.hook import model_sizes
from fastai.vision.learner import create_body, vision_learner
from eac_fastai.models.archs import ARCHS, ARCH_NOTES, CaffeBottleneck, resnet50_vggface2, mobilenet_v2, resnet18_cifar
from eac_fastai.methods.cam import class_activation_maps
from eac_fastai.errors import UserError
from eac_fastai.models.weights import load_backbone_weights

NEW = ('resnet50_vggface2', 'mobilenet_v2', 'resnet18_cifar')

def body_of(name): return create_body(ARCHS[name](weights=None), pretrained=False)    # as vision_learner cuts it

def test_registry():
    for n in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'):
        assert ARCHS[n] is getattr(torchvision.models, n)          # fastai's model_meta keeps cutting them at -2
    assert set(ARCH_NOTES) == set(ARCHS) and set(NEW) < set(ARCHS)

@pytest.mark.parametrize('name', NEW)
def test_builders_take_both_fastai_calls_and_download_nothing(name):
    for m in (ARCHS[name](weights=None), ARCHS[name](pretrained=False)):
        *_, (pool_name, pool), (head_name, head) = m.named_children()
        assert pool_name == 'avgpool' and isinstance(pool, nn.AdaptiveAvgPool2d) and head_name in ('fc', 'classifier')
    with pytest.raises(ValueError, match='nothing is downloaded'): ARCHS[name](weights='DEFAULT')
    with pytest.raises(ValueError, match='nothing is downloaded'): ARCHS[name](pretrained=True)

def _config(m): return {n: repr(c) for n, c in m.named_modules() if not list(c.children())}

def test_vggface2_resnet50_is_caffe_style():
    ours, tv = resnet50_vggface2(), torchvision.models.resnet50()
    assert ours.fc.out_features == 8631 and isinstance(ours.layer1[0], CaffeBottleneck)
    # same names and shapes: the pickle maps 1:1 (and fits tv too)
    a, b = ours.state_dict(), tv.state_dict()
    assert list(a) == list(b) and [k for k in a if a[k].shape != b[k].shape] == ['fc.weight', 'fc.bias']
    ca, cb = _config(ours), _config(tv)
    assert {n for n in ca if ca[n] != cb[n]} == {'maxpool', 'fc'} | {f'layer{i}.0.conv{j}' for i in (2, 3, 4)
                                                                     for j in (1, 2)}
    assert (ours.layer3[0].conv1.stride == (2, 2) and ours.layer3[0].conv2.stride == (1, 1)
            and tv.layer3[0].conv2.stride == (2, 2))
    assert ours.layer1[0].conv1.stride == ours.layer1[0].conv2.stride == (1, 1)
    body, tv_body = body_of('resnet50_vggface2'), create_body(tv, pretrained=False, cut=-2)
    assert len(body) == len(tv_body) == 8
    s224, tv224 = model_sizes(body, (224, 224)), model_sizes(tv_body, (224, 224))
    assert s224[-1] == torch.Size([1, 2048, 7, 7]) and s224 == tv224  # 112 → 56 → 56/28/14/7: AvgPool2d(7) == GAP here
    with torch.no_grad():                                          # where the max-pools part: no padding + ceil_mode
        x = torch.randn(1, 3, 226, 226)
        assert body[:4](x).shape[-1] == 56 and tv_body[:4](x).shape[-1] == 57

def test_mobilenet_v2_cut_and_imagenet_keys(tmp_path):
    body, tv = body_of('mobilenet_v2'), torchvision.models.mobilenet_v2()
    assert (len(body) == 1 and isinstance(body[0], nn.Sequential)
            and model_sizes(body, (64, 64))[-1] == torch.Size([1, 1280, 2, 2]))
    ours = mobilenet_v2(); ours.load_state_dict(tv.state_dict())   # identical keys; same function
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(): assert torch.allclose(ours.eval()(x), tv.eval()(x), atol=1e-5)
    torch.save(tv.state_dict(), tmp_path/'mobilenet_v2-imagenet.pth')
    assert (load_backbone_weights(body, mobilenet_v2(), tmp_path/'mobilenet_v2-imagenet.pth')
            == ['classifier.1.weight', 'classifier.1.bias'])
    assert all(torch.equal(v, tv.state_dict()[f'features.{k[2:]}']) for k, v in body.state_dict().items())

def test_resnet18_cifar(tmp_path):
    m, tv = resnet18_cifar(), torchvision.models.resnet18()
    assert (m.conv1.kernel_size, m.conv1.stride) == ((3, 3), (1, 1)) and isinstance(m.maxpool, nn.Identity)
    a, b = m.state_dict(), tv.state_dict()
    assert list(a) == list(b) and [k for k in a if a[k].shape != b[k].shape] == ['conv1.weight']
    body = body_of('resnet18_cifar')
    assert len(body) == 8 and model_sizes(body, (32, 32))[-1] == torch.Size([1, 512, 4, 4])
    torch.save(b, tmp_path/'imagenet_r18.pth')                      # ImageNet weights do not fit the 3×3 stem
    with pytest.raises(UserError, match=r'shape mismatches: conv1.weight \(64, 3, 7, 7\) vs \(64, 3, 3, 3\)'):
        load_backbone_weights(body, resnet18_cifar(), tmp_path/'imagenet_r18.pth')

@pytest.mark.parametrize('name,fmap', [('resnet50_vggface2', (2048, 1, 1)), ('mobilenet_v2', (1280, 1, 1)),
                                       ('resnet18_cifar', (512, 4, 4))])
def test_vision_learner_as_eac_learner_builds_it(dls, name, fmap):
    """The `vision_learner` call of `learner.eac_learner` on 32-px images: body, GAP → Flatten → Linear head, CAMs,
    param groups."""
    learn = vision_learner(dls, ARCHS[name], pretrained=False, concat_pool=False, lin_ftrs=[], first_bn=False, ps=0.,
                           init=None, loss_func=CrossEntropyLossFlat())
    body, head = learn.model
    assert [type(l) for l in head] == [nn.AdaptiveAvgPool2d, Flatten, nn.Linear]
    assert (head[2].in_features, head[2].out_features) == (fmap[0], 7)
    x, y = dls.one_batch()
    x, y = x[:4], y[:4]                                            # fast on CPU; BatchNorm needs > 1
    feats = body(x)
    assert feats.shape == (len(x), *fmap)
    logits = head(feats)
    cams = class_activation_maps(feats, head[2].weight)           # the CAMs EAC compares average to the logits
    assert torch.allclose(cams.mean((2, 3)) + head[2].bias, logits, atol=1e-4)
    learn.loss_func(learn.model(x), y).backward()
    assert all(p.grad is not None for p in body.parameters())
    groups = learn.splitter(learn.model)
    assert len(groups) >= 1 and sum(len(g) for g in groups) == len(list(learn.model.parameters()))
    learn.create_opt()
    assert len(learn.opt.param_groups) == len(groups)
    assert isinstance(pickle.loads(pickle.dumps(learn.model)), nn.Sequential)   # learn.export can pickle it
