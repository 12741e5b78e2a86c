"""Lab 04's topic: bilinear pooling and hierarchical bilinear pooling for fine-grained birds.

- Bilinear CNN: Lin, RoyChowdhury and Maji, "Bilinear CNN models for fine-grained visual
  recognition", ICCV 2015 (handout 003): the outer product of the last conv features with
  themselves, averaged over locations, signed square root, L2 normalisation, linear classifier.
- Hierarchical bilinear pooling: Yu, Zhao, Zheng, Zhang and You, "Hierarchical bilinear pooling
  for fine-grained visual recognition", ECCV 2018 (handout 000): three 1x1 projections of
  relu5_1, relu5_2 and relu5_3, the products of each pair summed over locations.

`pooling` holds the maths on feature maps (`bilinear_pool`, `hbp_interactions`,
`signed_sqrt_l2`); `heads` the heads and the nets of a backbone and a head (`BilinearCNN`,
`HBP`, and `GAPNet`, the global-average-pooling baseline). The backbones are in
`labkit.models.backbones`. The heads take feature maps, not images, and are not registered
with `labkit.models.get_model`.

Used in: 04_bcnn_hbp, 05_opam (`GAPNet` is its ClassNet).
"""

from labkit.bilinear.heads import HBP, BilinearCNN, BilinearHead, GAPHead, GAPNet, HBPHead
from labkit.bilinear.pooling import bilinear_pool, hbp_interactions, signed_sqrt_l2

__all__ = [
    "HBP",
    "BilinearCNN",
    "BilinearHead",
    "GAPHead",
    "GAPNet",
    "HBPHead",
    "bilinear_pool",
    "hbp_interactions",
    "signed_sqrt_l2",
]
