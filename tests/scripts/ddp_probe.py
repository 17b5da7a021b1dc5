"""Run by tests/test_distributed.py under torchrun: one process of a 2-process fit through
`eac_fastai.training.distributed`.

Writes `OUT/rank<R>.json`: the training steps this process took, the training images it drew, and a fingerprint of
its parameters before and after the fit."""
import json, sys
from pathlib import Path
import torch
from fastai.callback.core import Callback
from fastai.torch_core import rank_distrib
from eac_fastai.training.distributed import distributed
from eac_fastai.training.recipe import load_recipe
from eac_fastai.training.build import recipe_dataloaders, recipe_learner

class Probe(Callback):
    "Count this process's optimizer steps and record which training images its batches held."
    order = 100
    def before_fit(self): self.steps, self.seen, self.world = 0, [], torch.distributed.get_world_size()
    def after_step(self): self.steps += 1
    def before_batch(self):
        # this rank's share
        if self.training: self.seen += [int(i) for i in self.dl._DataLoader__idxs[self.iter*self.dl.bs:][:len(self.y)]]

def fingerprint(model) -> list[float]: return [float(p.detach().double().sum()) for p in model.parameters()]

recipe, out = load_recipe(sys.argv[1]), Path(sys.argv[2])
learn = recipe_learner(recipe, recipe_dataloaders(recipe))
before, probe = fingerprint(learn.model), Probe()
with learn.no_bar(), learn.no_logging(), distributed(learn): learn.fit(recipe.train.epochs, 1e-3, cbs=[probe])
(out/f'rank{rank_distrib()}.json').write_text(json.dumps(dict(steps=probe.steps, seen=probe.seen, before=before,
                                                              after=fingerprint(learn.model), world=probe.world)))
