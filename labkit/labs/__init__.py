"""The lab layer: one module per lab with its settings (one instance per profile) and its glue.

- `vgg_receptive_fields`: lab 01, VGG, receptive fields, dense and multi-crop evaluation,
  fine-tuning on a photo folder;
- `densenet_resnext`: lab 02, DenseNet and ResNeXt on the digits;
- `facenet_knn`: lab 03, triplet embeddings, KNN and class centres on the digits;
- `digits`: the settings and data loading labs 02 and 03 share;
- `bcnn_hbp`: lab 04, bilinear pooling (BCNN, HBP) in two stages on the birds;
- `opam`: lab 05, the object-part attention model (patches, saliency, object box, parts,
  alignment, ClassNet, ObjectNet, PartNet, fusion) on the birds;
- `birds`: the settings and data loading the bird labs (01's pretraining, 04, 05) share;
- `settings`: the base every lab's settings derive from.

A lab notebook starts with `lab = <module>.start()` (one field overridden:
`<module>.start(val_fraction=0.2)`, one field of a training recipe
`<module>.start(training={"num_epochs": 5})`); library modules never see these settings, only
the plain arguments the lab module passes them.
"""
