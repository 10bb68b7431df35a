"""Models built by name, in pure torch: ``create("resnet50", num_classes=2)``; a user's own
model is a factory named ``package.module:function`` or ``path/to/file.py:function``.

The package by job: ``registry`` (the built-in names, user factories, ``create``), one module
per family (``mlp``, ``cnn``, ``resnet``, ``vit``), ``weights`` (pretrained state dicts in
torchvision's key layout), ``flops`` (what a training step costs).
"""

from fairensemble.models.registry import (
    BUILTIN,
    HEAD_NAMES,
    NAMES,
    accepted,
    check_name,
    create,
    factory_file,
    head_name,
    is_factory,
    resolve,
)

__all__ = ["BUILTIN", "HEAD_NAMES", "NAMES", "accepted", "check_name", "create", "factory_file",
           "head_name", "is_factory", "resolve"]
