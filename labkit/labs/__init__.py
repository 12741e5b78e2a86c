"""The lab layer: one module per lab with its settings (one instance per profile), its glue, and
exactly the names its notebook imports (`__all__`).

- `vgg_receptive_fields`: lab 01, VGG, receptive fields, dense and multi-crop evaluation,
  fine-tuning on a photo folder;
- `densenet_resnext`: lab 02, DenseNet and ResNeXt on the digits;
- `facenet_knn`: lab 03, triplet embeddings, KNN and class centres on the digits;
- `bcnn_hbp`: lab 04, bilinear pooling (BCNN, HBP) in two stages on the birds;
- `opam`: lab 05, the object-part attention model (patches, saliency, object box, parts,
  alignment, ClassNet, ObjectNet, PartNet, fusion) on the birds;

and what they share, none of them a lab:
- `session`: the first cell (`LabEntry`: a lab's `settings` and `start`, written once; `Lab`);
- `settings`: the base every lab's settings derive from, and how a profile is chosen;
- `digits`: the settings and data loading labs 02 and 03 share;
- `birds`: the settings, data loading and one training stage the bird labs (01, 04, 05) share;
- `pretraining`: ImageNet weights when on disk, else pretraining on the source species, in the
  calling lab's runs folder (labs 01, 04, 05).

No lab module imports another. A notebook starts with `lab = <module>.start()` (one field
overridden: `<module>.start(num_workers=2)`); library modules never see these settings, only the
plain arguments the lab module passes them. A new lab is its lab module, its notebook, and a
topic wing (`labkit/<topic>/`) if it brings a new topic.
"""
