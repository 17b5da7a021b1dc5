"Backbones, pretrained weights and the learner."
