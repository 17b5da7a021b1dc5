"""Backbones by name for `eac_learner`: torchvision's ResNets, the Caffe-style VGGFace2 ResNet-50 of the official EAC,
MobileNetV2, a 32-px ResNet-18 and narrow 32-px ResNet-10s. All keep torchvision's parameter names, so
`load_backbone_weights` maps their checkpoints, and all end with a pooling child then the classifier, so fastai's
`create_body` cuts the body before them.

Nothing is downloaded: the added builders refuse `weights`/`pretrained`; load a local file with `load_backbone_weights`.

The VGGFace2 weights (`resnet50_ft_weight.pkl`) use torchvision's resnet50 names and shapes, so they also load into
`resnet50` without an error, but that is a different network (stride on the 3×3 convolution, padded max-pool):
use `resnet50_vggface2` for them."""
import torch, torchvision
from torch import nn
from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck

__all__ = ['ARCHS', 'ARCH_NOTES', 'CaffeBottleneck', 'MobileNetV2', 'NarrowResNet', 'resnet50_vggface2', 'mobilenet_v2',
           'resnet18_cifar', 'resnet10_narrow', 'resnet10_tiny']

def _local_only(name:str, weights, pretrained):
    if weights is not None or pretrained:
        raise ValueError(f"{name}: nothing is downloaded; build it with weights=None and load a local file "
                         "with load_backbone_weights (model.weights in a recipe)")

class CaffeBottleneck(Bottleneck):
    "torchvision's `Bottleneck` with the stride on the first 1×1 convolution (Caffe's ResNet v1) instead of the 3×3."
    def __init__(self, inplanes:int, planes:int, stride:int=1, *args, **kwargs):
        super().__init__(inplanes, planes, stride, *args, **kwargs)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)

def resnet50_vggface2(weights=None, pretrained=False, num_classes:int=8631, **kwargs) -> ResNet:
    """The Caffe-style ResNet-50 of VGGFace2-pytorch (`resnet50_ft`), which the official EAC fine-tunes: stride in the
    first 1×1 convolution of each block, max-pool 3/2 without padding and with `ceil_mode`, fc 2048→8631 (VGGFace2
    identities). Pooling is torchvision's global average: the original `AvgPool2d(7)` is the same at 224 px
    (7×7 map)."""
    _local_only('resnet50_vggface2', weights, pretrained)
    m = ResNet(CaffeBottleneck, [3, 4, 6, 3], num_classes=num_classes, **kwargs)
    m.maxpool = nn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)
    return m

class MobileNetV2(torchvision.models.MobileNetV2):
    """torchvision's MobileNetV2 with its global average pooling as an `avgpool` child before `classifier`, so fastai
    cuts at `features`."""
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        classifier = self.classifier
        del self.classifier                                   # re-registered after `avgpool`: children keep their order
        self.avgpool, self.classifier = nn.AdaptiveAvgPool2d(1), classifier
    def forward(self, x): return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

def mobilenet_v2(weights=None, pretrained=False, **kwargs) -> MobileNetV2:
    """MobileNetV2 (torchvision's, ImageNet keys `features.*`, `classifier.1.*`); the body is `features`, 1280 channels
    at stride 32."""
    _local_only('mobilenet_v2', weights, pretrained)
    return MobileNetV2(**kwargs)

def resnet18_cifar(weights=None, pretrained=False, **kwargs) -> ResNet:
    """ResNet-18 for 32-px images: 3×3 stride-1 stem without max-pool (an `Identity`), so the final map is 4×4 at 32 px;
    torchvision names."""
    _local_only('resnet18_cifar', weights, pretrained)
    m = ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)
    m.conv1, m.maxpool = nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.Identity()
    nn.init.kaiming_normal_(m.conv1.weight, mode='fan_out', nonlinearity='relu')  # as torchvision initialises its convs
    return m

class NarrowResNet(ResNet):
    """A small-image ResNet of `BasicBlock`s with any stage widths: 3×3 stride-1 stem, no max-pool, stride 2 from
    stage 2 on."""
    def __init__(self, layers=(1, 1, 1, 1), widths=(16, 32, 64, 128), num_classes:int=1000):
        nn.Module.__init__(self)                                  # ResNet's own __init__ fixes the widths at 64…512
        self._norm_layer, self.dilation, self.groups, self.base_width, self.inplanes = \
            nn.BatchNorm2d, 1, 1, 64, widths[0]
        self.conv1, self.bn1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0])
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.Identity()
        for i, (n, w) in enumerate(zip(layers, widths)):
            setattr(self, f'layer{i+1}', self._make_layer(BasicBlock, w, n, stride=1 if i == 0 else 2))
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(widths[-1], num_classes)
        for m in self.modules():                                  # torchvision's initialisation
            if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d): nn.init.ones_(m.weight); nn.init.zeros_(m.bias)

def resnet10_narrow(weights=None, pretrained=False, **kwargs) -> NarrowResNet:
    """ResNet-10 for 32-px images: one `BasicBlock` per stage, widths 16-32-64-128, so a 128×4×4 map at 32 px (the
    benchmark's network)."""
    _local_only('resnet10_narrow', weights, pretrained)
    return NarrowResNet(**kwargs)

def resnet10_tiny(weights=None, pretrained=False, **kwargs) -> NarrowResNet:
    """`resnet10_narrow` at half the widths, 8-16-32-64 (a 64×4×4 map at 32 px, a quarter of the multiply-adds): the
    quickstart's network, for a CPU."""
    _local_only('resnet10_tiny', weights, pretrained)
    return NarrowResNet(widths=(8, 16, 32, 64), **kwargs)

_TV = ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152')
# the torchvision functions first: fastai's model_meta cuts them at -2
ARCHS = {**{n: getattr(torchvision.models, n) for n in _TV},
         'resnet50_vggface2': resnet50_vggface2, 'mobilenet_v2': mobilenet_v2, 'resnet18_cifar': resnet18_cifar,
         'resnet10_narrow': resnet10_narrow, 'resnet10_tiny': resnet10_tiny}
ARCH_NOTES = {
    **{n: f"torchvision ResNet-{n[6:]} (v1.5: stride on the 3×3 convolution); torchvision-layout checkpoints"
       for n in _TV},
    'resnet18': "torchvision ResNet-18; torchvision-layout checkpoints such as RUL's resnet18_msceleb.pth "
                "(the EAC author's R18)",
    'resnet50': "torchvision ResNet-50 (v1.5: stride on the 3×3 convolution); "
                "not for VGGFace2's resnet50_ft_weight.pkl, which loads without error but belongs to resnet50_vggface2",
    'resnet50_vggface2': "Caffe-style ResNet-50 of VGGFace2 / the official EAC (stride on the first 1×1, "
                         "ceil-mode max-pool); for resnet50_ft_weight.pkl; 2048×7×7 map at 224 px",
    'mobilenet_v2': "torchvision MobileNetV2, body = features (1280 channels, stride 32); "
                    "torchvision ImageNet keys load",
    'resnet18_cifar': "ResNet-18 for 32-px inputs (3×3 stride-1 stem, no max-pool; 512×4×4 map at 32 px); "
                      "torchvision names",
    'resnet10_narrow': "ResNet-10 for 32-px inputs (3×3 stride-1 stem, one block per stage, widths 16-32-64-128; "
                       "128×4×4 map at 32 px)",
    'resnet10_tiny': "resnet10_narrow at widths 8-16-32-64 (64×4×4 map at 32 px; the quickstart's CPU network)",
}
