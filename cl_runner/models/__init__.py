"""Models: Avalanche's SimpleMLP, a small CNN for CIFAR, and multi-head classifiers.

The networks (``networks.py``) need torch and are imported on first use; their settings
(``settings.py``) do not, so ``cl-run`` checks a model config before torch is loaded.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "networks": ["BiasLayer", "MultiHeadClassifier", "MultiHeadMLP", "MultiHeadNetwork",
                     "MultiTaskModule", "NCMClassifier", "SCRModel", "SimpleCNN", "SimpleMLP",
                     "TrainEvalModel", "flat_size"],
        "tasks": ["forward_with_tasks"],
    },
)
