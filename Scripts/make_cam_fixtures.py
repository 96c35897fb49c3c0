"""Writes the CAM parity fixtures read by Tests/VoxelCAMTests/CAMParityTests.swift.

Run from the repository root:  python3 Scripts/make_cam_fixtures.py
On the committed fixture models of Scripts/make_model_fixtures.py (same seeds, same weights; the script
checks the logits against the stored ones), for class 1 it computes:
  - MONAI's CAM, GradCAM and GradCAMpp with postprocessing set to the identity (maps at input
    resolution, MONAI's trilinear upsampler);
  - torch-cam's 3D ScoreCAM (raw map at layer resolution, normalized=False);
  - pytorch-grad-cam's XGradCAM weights and LayerCAM map, from its own get_cam_weights/get_cam_image
    on the layer's activation and gradient (its 3D resizing uses scipy.ndimage.zoom, so maps are
    compared at layer resolution).
Writes Tests/Fixtures/cam/<model>.json.
"""
import os
import sys

import monai
import numpy as np
import pytorch_grad_cam
import torch
import torchcam
from monai.visualize import CAM, GradCAM, GradCAMpp
from pytorch_grad_cam import LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torchcam.methods import ScoreCAM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
from make_model_fixtures import layer_gradient, models  # noqa: E402
from models3d import randomize_batchnorm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "cam")
# model -> (target layer, linear layer of the head)
TARGETS = {"vgg": ("features", "fc"), "resnet": ("layer4", "fc"), "densenet": ("class_layers.relu", "class_layers.out")}
CLASS = 1


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"torch": torch.__version__, "monai": monai.__version__, "torchcam": torchcam.__version__,
                "grad-cam": getattr(pytorch_grad_cam, "__version__", "1.5.7")}
    for name, model, size, _ in models():
        if name not in TARGETS:
            continue
        layer, fc = TARGETS[name]
        model = randomize_batchnorm(model.eval())
        stored = golden_logits(name)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, 1, size, size, size, generator=g)
        with torch.no_grad():
            logits = model(x)
        assert np.abs(logits.numpy() - stored).max() < 1e-5, f"{name}: weights differ from the model fixture"
        tensors = {"input": x.numpy(), "logits": logits.numpy()}
        post = lambda m: m  # noqa: E731  (identity postprocessing, as the issue asks)
        tensors["cam"] = CAM(nn_module=model, target_layers=layer, fc_layers=fc, postprocessing=post)(x, class_idx=torch.tensor([CLASS])).detach().numpy()
        tensors["gradcam"] = GradCAM(nn_module=model, target_layers=layer, postprocessing=post)(x, class_idx=CLASS).detach().numpy()
        tensors["gradcampp"] = GradCAMpp(nn_module=model, target_layers=layer, postprocessing=post)(x, class_idx=CLASS).detach().numpy()
        model.zero_grad()
        module = dict(model.named_modules())[layer]
        with ScoreCAM(model, target_layer=module, input_shape=tuple(x.shape[1:]), batch_size=16) as extractor:
            out = model(x)
            tensors["scorecam_layer"] = extractor(CLASS, out, normalized=False)[0].detach().numpy()
        acti, grad = layer_gradient(model, x.clone(), layer, CLASS)
        targets = [ClassifierOutputTarget(CLASS)]
        xw = XGradCAM(model=model, target_layers=[module]).get_cam_weights(x, module, targets, acti, grad)
        tensors["xgradcam_layer"] = np.maximum((xw[:, :, None, None, None] * acti).sum(axis=1), 0)
        lc = LayerCAM(model=model, target_layers=[module]).get_cam_image(x, module, targets, acti, grad, False)
        tensors["layercam_layer"] = np.maximum(lc, 0)
        golden.write(os.path.join(OUT, f"{name}.json"), "Scripts/make_cam_fixtures.py", versions,
                     [golden.case(name, "cam", tensors, ints={"class": CLASS},
                                  strings={"file": f"{name}.onnx", "layer": layer})])


def golden_logits(name):
    import json
    with open(os.path.join(ROOT, "Tests", "Fixtures", "models", f"{name}.json")) as f:
        for c in json.load(f)["cases"]:
            if c["op"] == "layer-gradient":
                t = c["tensors"]["logits"]
                return np.array(t["data"], dtype=np.float32).reshape(t["shape"])


if __name__ == "__main__":
    main()
