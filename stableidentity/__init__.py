"""StableIdentity on SDXL, the paper's method and nothing else.

FR-ViT face features (:mod:`~stableidentity.identity_encoder`) -> two MLPs, one per SDXL text
encoder (:mod:`~stableidentity.mlp`) -> AdaIN onto celebrity-name statistics
(:mod:`~stableidentity.adain`, :mod:`~stableidentity.celebrities`) -> the two-phase masked
diffusion loss (:mod:`~stableidentity.loss`, :mod:`~stableidentity.masks`,
:mod:`~stableidentity.augment`, :mod:`~stableidentity.conditioning`,
:mod:`~stableidentity.templates`), run by :mod:`~stableidentity.trainer`. ``python -m
stableidentity`` is the identity command line (:mod:`~stableidentity.cli`).
"""
