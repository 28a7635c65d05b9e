"""The reference vision models (bench.suites.vision): ResNet-50 v1.5, MobileNetV3-Large,
EfficientNet-B0, ViT-B/16, ConvNeXt-T and YOLOX-S, in plain PyTorch (no torchvision, no timm), with
seeded random weights. Each module's docstring names the paper and the reference implementation its
layer shapes were taken from; ``common.py`` holds what the classifiers share."""
