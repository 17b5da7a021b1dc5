"EAC (Erasing Attention Consistency, ECCV 2022) for noisy-label facial expression recognition, as a fastai recipe."
__version__ = '0.1.0'
