"""The 3D CNNs Voxplain benchmarks and imports: a VGG-style classifier and MONAI's ResNet-18 and
DenseNet-121, built exactly as users build them. Shared by the benchmark and fixture scripts."""
import torch
import torch.nn as nn


class VGG3D(nn.Module):
    """A VGG-style 3D classifier: four stages of two 3x3x3 conv + BN + ReLU, max-pooling between
    stages, then global average pooling and a linear head (so CAM applies)."""

    def __init__(self, in_channels=1, widths=(16, 32, 64, 128), num_classes=2):
        super().__init__()
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool3d(2))
            for _ in range(2):
                layers += [nn.Conv3d(c, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU()]
                c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def randomize_batchnorm(model, seed=0):
    """Gives every BatchNorm non-trivial running statistics, as a trained model has."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def bench_models():
    """(name, model, input size) for the whole-model benchmark targets of the engine issue."""
    from monai.networks.nets import DenseNet121, resnet18

    return [
        ("vgg3d", VGG3D(), 64),
        ("resnet18", resnet18(spatial_dims=3, n_input_channels=1, num_classes=2), 128),
        ("densenet121", DenseNet121(spatial_dims=3, in_channels=1, out_channels=2), 96),
    ]


def conv_flops(model, size, channels=1):
    """Multiply-adds x 2 of every Conv3d and Linear for one forward pass at size^3."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv3d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.kernel_size[2]
            total[0] += 2 * out.numel() * (m.in_channels // m.groups) * k
        elif isinstance(m, nn.Linear):
            total[0] += 2 * out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, channels, size, size, size))
    for h in hs:
        h.remove()
    return total[0]
