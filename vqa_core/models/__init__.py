"""Quality models: libvmaf's JSON VMAF models and the built-in Netflix models.

>>> from vqa_core.models import load_model
>>> m = load_model("vmaf_v0.6.1")
>>> m.extractors()          # what the engine must compute
>>> m.predict_features({"adm2": 0.93, "motion2": 3.9, "vif_scale0": 0.36,
...                     "vif_scale1": 0.77, "vif_scale2": 0.86, "vif_scale3": 0.92})
"""
from .libsvm import SVRModel, parse_libsvm
from .vmaf import (BUILTIN_MODELS, DATA_DIR, BootstrapVmafModel, ModelFeature, VmafModel,
                   load_model_spec, parse_model_spec,
                   builtin_models, load_model, model_from_dict, resolve_feature)

__all__ = ["load_model", "load_model_spec", "parse_model_spec", "builtin_models", "model_from_dict", "VmafModel",
           "BootstrapVmafModel", "ModelFeature", "resolve_feature", "parse_libsvm",
           "SVRModel", "BUILTIN_MODELS", "DATA_DIR"]
