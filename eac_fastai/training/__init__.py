"Recipes and running them: schema, loading, building the learner, lr_find, the fit, checkpoints, run folders, sweeps."
